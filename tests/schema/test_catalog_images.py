"""Product images over GraphQL multipart uploads: what is refused before anything is stored
(non-images, oversized files, decompression bombs), what is cleaned (EXIF, orientation), where
files land (each tenant's own folder), renditions, and the tenant-scoped media view."""

import struct
import zlib
from io import BytesIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django_tenants.utils import tenant_context
from PIL import Image

from apps.audit.models import AuditEntry
from apps.catalog import image_services, services
from apps.catalog.models import ProductImage
from tests.apps.catalog import factories
from tests.apps.catalog.factories import image_bytes, upload
from tests.conftest import body_of, gid, token_for

ONE = """mutation($product: ID!, $file: Upload!, $alt: String!) {
  productImageUpload(product: $product, file: $file, altText: $alt) {
    image { id altText position width height url renditionSizes } userErrors { field code message } } }"""
MANY = """mutation($product: ID!, $files: [Upload!]!) {
  productImagesUpload(product: $product, files: $files) {
    images { id position width height url } userErrors { field code } } }"""
IMAGES = """query($id: ID!) { node(id: $id) { ... on Product { images {
  id altText position url small: url(size: 100) medium: url(size: 640) large: url(size: 2000) } } } }"""


@pytest.fixture
def staff(alpha):
    return token_for(alpha.email("staff"), alpha.tenant)


@pytest.fixture
def shirt(alpha):
    return factories.product(alpha, "Shirt", variants=[{"sku": "SHIRT-1", "price": 10}])


def _stored(fixture) -> set[str]:
    root = Path(settings.MEDIA_ROOT) / fixture.tenant.schema_name
    return (
        {str(path.relative_to(root)) for path in root.rglob("*") if path.is_file()}
        if root.exists()
        else set()
    )


def _upload_one(gql, fixture, token, product, content, *, name="photo.png", alt=""):
    return upload(
        gql,
        fixture,
        token,
        ONE,
        {"product": gid(fixture, "Product", product.pk), "file": None, "alt": alt},
        {"file": (name, content)},
    )


def _path_of(fixture, url: str) -> Path:
    name = url.split(f"/media/{fixture.tenant.schema_name}/", 1)[1]
    return Path(settings.MEDIA_ROOT) / fixture.tenant.schema_name / name


def test_upload_stores_a_cleaned_image_in_the_tenants_folder(gql, alpha, staff, shirt):
    response = _upload_one(
        gql,
        alpha,
        staff,
        shirt,
        image_bytes("PNG", (64, 48)),
        name="../../evil name.PNG",
        alt=" Front ",
    )
    assert response.errors == [], response.body
    payload = response.data["productImageUpload"]
    assert payload["userErrors"] == []
    image = payload["image"]
    assert (image["altText"], image["position"], image["width"], image["height"]) == (
        "Front",
        0,
        64,
        48,
    )
    assert image["renditionSizes"] == []  # the task has not run: the original serves every size
    assert image["url"].startswith(f"http://{alpha.host}/media/alpha/products/{shirt.pk}/")
    assert (
        image["url"].endswith(".png") and "evil" not in image["url"]
    )  # named by us, typed by content
    path = _path_of(alpha, image["url"])
    assert path.is_file() and path.parent == Path(settings.MEDIA_ROOT) / "alpha" / "products" / str(
        shirt.pk
    )
    with Image.open(path) as stored:
        assert stored.format == "PNG" and stored.size == (64, 48)
    with tenant_context(alpha.tenant):
        assert AuditEntry.objects.filter(action="product_image.create").count() == 1


def test_exif_is_stripped_and_orientation_applied(gql, alpha, staff, shirt):
    raw = Image.new("RGB", (300, 200), "blue")
    raw.paste((255, 0, 0), (0, 0, 150, 200))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    exif[0x010F] = "SpyCam"  # make
    exif[0x8825] = {2: (52.0, 22.0, 0.0)}  # GPS latitude
    out = BytesIO()
    raw.save(out, "JPEG", exif=exif, quality=95, comment=b"secret comment")
    with Image.open(BytesIO(out.getvalue())) as sent:
        assert sent.getexif()[0x010F] == "SpyCam"  # the upload does carry it
    response = _upload_one(gql, alpha, staff, shirt, out.getvalue(), name="photo.jpg")
    image = response.data["productImageUpload"]["image"]
    assert (image["width"], image["height"]) == (200, 300)
    with Image.open(_path_of(alpha, image["url"])) as stored:
        assert stored.format == "JPEG" and stored.size == (200, 300)
        assert dict(stored.getexif()) == {}
        assert not {"exif", "comment", "xmp"} & set(stored.info)
        top, bottom = (
            stored.convert("RGB").getpixel((100, 40)),
            stored.convert("RGB").getpixel((100, 260)),
        )
    assert top[0] > 200 and top[2] < 60  # the red half is on top once turned upright
    assert bottom[2] > 200 and bottom[0] < 60


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        (
            "photo.png",
            b"This is not a PNG at all, only text pretending to be one.\n" * 20,
            "INVALID_IMAGE",
        ),
        ("photo.png", b"", "INVALID_IMAGE"),
        ("photo.bmp", None, "INVALID_IMAGE"),  # an image, but not one of the four formats
        ("photo.png", "truncated", "INVALID_IMAGE"),
    ],
)
def test_what_is_not_a_usable_image_is_refused_and_nothing_stored(
    gql, alpha, staff, shirt, name, content, code
):
    if content is None:
        content = image_bytes("BMP")
    elif content == "truncated":
        content = image_bytes("PNG", (200, 200), "green")[:120]
    before = _stored(alpha)
    response = _upload_one(gql, alpha, staff, shirt, content, name=name)
    assert response.data["productImageUpload"]["image"] is None
    assert [(e["field"], e["code"]) for e in response.data["productImageUpload"]["userErrors"]] == [
        ("file", code)
    ]
    assert _stored(alpha) == before
    with tenant_context(alpha.tenant):
        assert ProductImage.objects.count() == 0


def test_an_oversized_file_is_refused_before_it_is_read(gql, alpha, staff, shirt, settings):
    settings.PRODUCT_IMAGE_MAX_BYTES = 2_000
    content = image_bytes("PNG", (300, 300), "white", compress_level=0)
    assert len(content) > 2_000
    before = _stored(alpha)
    response = _upload_one(gql, alpha, staff, shirt, content)
    assert response.data["productImageUpload"]["userErrors"][0]["code"] == "FILE_TOO_LARGE"
    assert _stored(alpha) == before


def _png_claiming(width: int, height: int) -> bytes:
    """A few dozen bytes whose header claims `width` x `height` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("size", [(100_000, 100_000), (8_000, 6_000)])
def test_decompression_bombs_are_refused_before_decoding(gql, alpha, staff, shirt, size):
    """Far past Pillow's own limit, and past ours (40 Mpx) though below Pillow's."""
    bomb = _png_claiming(*size)
    assert len(bomb) < 200
    before = _stored(alpha)
    response = _upload_one(gql, alpha, staff, shirt, bomb)
    assert [(e["field"], e["code"]) for e in response.data["productImageUpload"]["userErrors"]] == [
        ("file", "TOO_MANY_PIXELS")
    ]
    assert _stored(alpha) == before


def test_many_files_at_once_all_or_nothing(gql, alpha, staff, shirt):
    variables = {"product": gid(alpha, "Product", shirt.pk), "files": [None, None, None]}
    good = {f"files.{n}": (f"{n}.png", image_bytes("PNG", (20 + n, 20))) for n in range(3)}
    before = _stored(alpha)
    bad = {**good, "files.1": ("1.png", b"GIF89a but not really")}
    refused = upload(gql, alpha, staff, MANY, variables, bad)
    assert refused.data["productImagesUpload"] == {
        "images": [],
        "userErrors": [{"field": "files.1", "code": "INVALID_IMAGE"}],
    }
    assert _stored(alpha) == before
    made = upload(gql, alpha, staff, MANY, variables, good)
    images = made.data["productImagesUpload"]["images"]
    assert [(i["position"], i["width"]) for i in images] == [(0, 20), (1, 21), (2, 22)]
    more = upload(
        gql,
        alpha,
        staff,
        MANY,
        {"product": gid(alpha, "Product", shirt.pk), "files": [None]},
        {"files.0": ("x.gif", image_bytes("GIF"))},
    )
    assert more.data["productImagesUpload"]["images"][0]["position"] == 3  # after the last one


def test_too_many_files_at_once(gql, alpha, staff, shirt, settings):
    settings.PRODUCT_IMAGE_MAX_FILES = 2
    files = {f"files.{n}": (f"{n}.png", image_bytes()) for n in range(3)}
    response = upload(
        gql,
        alpha,
        staff,
        MANY,
        {"product": gid(alpha, "Product", shirt.pk), "files": [None] * 3},
        files,
    )
    assert response.data["productImagesUpload"]["userErrors"] == [
        {"field": "files", "code": "TOO_MANY_FILES"}
    ]


def test_a_16_bit_grey_png_keeps_its_tones(gql, alpha, staff, shirt):
    out = BytesIO()
    Image.new("I;16", (8, 8), 40_000).save(out, "PNG")
    image = _upload_one(gql, alpha, staff, shirt, out.getvalue()).data["productImageUpload"][
        "image"
    ]
    with Image.open(_path_of(alpha, image["url"])) as stored:
        assert stored.convert("L").getpixel((0, 0)) == 40_000 // 256


def test_an_animated_gif_stays_animated(gql, alpha, staff, shirt):
    frames = [Image.new("RGB", (40, 30), color) for color in ("red", "green", "blue")]
    out = BytesIO()
    frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=120, loop=0)
    image = _upload_one(gql, alpha, staff, shirt, out.getvalue(), name="a.gif").data[
        "productImageUpload"
    ]["image"]
    with Image.open(_path_of(alpha, image["url"])) as stored:
        assert stored.format == "GIF" and stored.n_frames == 3
    with tenant_context(alpha.tenant):
        names = image_services.write_renditions(image_id=int(ProductImage.objects.get().pk))
        assert names == {}  # 40 px is below every rendition size: nothing is upscaled


def test_renditions_are_written_never_upscaled_and_resolved_by_url_size(gql, alpha, staff, shirt):
    response = _upload_one(
        gql, alpha, staff, shirt, image_bytes("JPEG", (900, 600)), name="big.jpg", alt="big"
    )
    image = response.data["productImageUpload"]["image"]
    with tenant_context(alpha.tenant):
        pk = ProductImage.objects.get(alt_text="big").pk
        names = image_services.write_renditions(image_id=pk)
        assert sorted(names) == ["160", "640"]  # 1280 would be an upscale of a 900 px image
        again = image_services.write_renditions(image_id=pk)  # idempotent: same files, no copies
        assert again == names
    files = {name for name in _stored(alpha) if name.startswith(f"products/{shirt.pk}/")}
    stem = image["url"].rsplit("/", 1)[1].rsplit(".", 1)[0]
    assert files == {
        f"products/{shirt.pk}/{stem}.jpg",
        f"products/{shirt.pk}/{stem}-160.webp",
        f"products/{shirt.pk}/{stem}-640.webp",
    }
    for size in (160, 640):
        with Image.open(Path(settings.MEDIA_ROOT) / "alpha" / names[str(size)]) as rendition:
            assert rendition.format == "WEBP" and max(rendition.size) == size
            assert rendition.width == size and abs(rendition.height - size * 2 / 3) < 1
    urls = gql.post(
        IMAGES, {"id": gid(alpha, "Product", shirt.pk)}, host=alpha.host, token=staff
    ).data["node"]["images"][0]
    assert urls["small"].endswith(f"{stem}-160.webp") and urls["medium"].endswith(
        f"{stem}-640.webp"
    )
    assert urls["large"].endswith(f"{stem}.jpg") and urls["url"].endswith(f"{stem}.jpg")


def test_renditions_of_a_deleted_image_leave_nothing_behind(alpha, shirt):
    with tenant_context(alpha.tenant):
        image = ProductImage.objects.create(
            product=shirt, image=f"products/{shirt.pk}/gone.png", width=900, height=900
        )
        assert (
            image_services.write_renditions(image_id=image.pk) == {}
        )  # the file is missing: nothing to do
        image.delete()
        assert image_services.write_renditions(image_id=image.pk) == {}


def test_files_of_two_tenants_never_mix_and_media_is_served_per_tenant(
    gql, alpha, beta, staff, shirt
):
    beta_shirt = factories.product(beta, "Shirt", variants=[{"sku": "SHIRT-1", "price": 10}])
    beta_staff = token_for(beta.email("staff"), beta.tenant)
    alpha_url = _upload_one(gql, alpha, staff, shirt, image_bytes(color="red")).data[
        "productImageUpload"
    ]["image"]["url"]
    beta_url = _upload_one(gql, beta, beta_staff, beta_shirt, image_bytes(color="blue")).data[
        "productImageUpload"
    ]["image"]["url"]
    assert "/media/alpha/" in alpha_url and "/media/beta/" in beta_url
    assert _path_of(alpha, alpha_url).is_file() and _path_of(beta, beta_url).is_file()
    assert Path(settings.MEDIA_ROOT, "alpha") not in _path_of(beta, beta_url).parents
    alpha_path = "/" + alpha_url.split("/", 3)[3]
    beta_path = "/" + beta_url.split("/", 3)[3]
    served = gql.get(alpha_path, host=alpha.host)
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    with Image.open(BytesIO(body_of(served))) as picture:
        assert picture.getpixel((0, 0))[:3] == (255, 0, 0)
    assert gql.get(beta_path, host=alpha.host).status_code == 404  # beta's file on alpha's host
    assert gql.get(alpha_path, host=beta.host).status_code == 404
    assert (
        gql.get(alpha_path.replace("/media/alpha/", "/media/beta/"), host=beta.host).status_code
        == 404
    )
    assert gql.get(beta_path, host=beta.host).status_code == 200
    assert (
        gql.get(beta_path.replace("/media/beta/", "/media/alpha/"), host=beta.host).status_code
        == 404
    )
    climbing = gql.get(
        "/media/alpha/../beta/" + beta_path.split("/media/beta/")[1], host=alpha.host
    )
    assert climbing.status_code in (400, 404)
    with tenant_context(beta.tenant):
        assert not default_storage.exists(alpha_path.split("/media/alpha/")[1])


def test_alt_text_reorder_and_delete(gql, alpha, staff, shirt):
    variables = {"product": gid(alpha, "Product", shirt.pk), "files": [None, None, None]}
    files = {f"files.{n}": (f"{n}.png", image_bytes("PNG", (10 + n, 10))) for n in range(3)}
    ids = [
        i["id"]
        for i in upload(gql, alpha, staff, MANY, variables, files).data["productImagesUpload"][
            "images"
        ]
    ]
    alt = gql.post(
        'mutation($id: ID!) { productImageUpdate(id: $id, altText: "Side view") { image { '
        "altText } userErrors { code } } }",
        {"id": ids[1]},
        host=alpha.host,
        token=staff,
    )
    assert alt.data["productImageUpdate"] == {"image": {"altText": "Side view"}, "userErrors": []}
    reorder = """mutation($product: ID!, $images: [ID!]!) { productImagesReorder(product: $product, images: $images) {
      images { id position } userErrors { field code } } }"""
    new_order = [ids[2], ids[0], ids[1]]
    done = gql.post(
        reorder,
        {"product": variables["product"], "images": new_order},
        host=alpha.host,
        token=staff,
    )
    assert done.data["productImagesReorder"]["images"] == [
        {"id": i, "position": n} for n, i in enumerate(new_order)
    ]
    for bad in (
        [ids[0], ids[1]],
        [ids[0], ids[0], ids[1], ids[2]],
        [*ids, gid(alpha, "ProductImage", 999999)],
    ):
        refused = gql.post(
            reorder, {"product": variables["product"], "images": bad}, host=alpha.host, token=staff
        )
        assert refused.data["productImagesReorder"]["userErrors"] == [
            {"field": "images", "code": "INVALID"}
        ]
    listed = gql.post(IMAGES, {"id": variables["product"]}, host=alpha.host, token=staff).data[
        "node"
    ]["images"]
    assert [i["id"] for i in listed] == new_order and listed[2]["altText"] == "Side view"
    path = _path_of(alpha, listed[0]["url"])
    deleted = gql.post(
        "mutation($id: ID!) { productImageDelete(id: $id) { deletedId userErrors { code } } }",
        {"id": ids[2]},
        host=alpha.host,
        token=staff,
    )
    assert deleted.data["productImageDelete"] == {"deletedId": ids[2], "userErrors": []}
    with tenant_context(alpha.tenant):
        assert ProductImage.objects.filter(product=shirt).count() == 2
    # The file goes once the deletion commits (the test's transaction never does).
    assert path.is_file()


def test_deleted_files_go_when_the_deletion_commits(
    alpha, shirt, django_capture_on_commit_callbacks
):
    from apps.accounts.authentication import Principal

    with tenant_context(alpha.tenant):
        made = image_services.add_product_images(
            actor=Principal(), product_id=shirt.pk, uploads=[BytesIO(image_bytes())]
        )
        name = made[0].image.name
        assert default_storage.exists(name)
        with django_capture_on_commit_callbacks(execute=True):
            services.delete_product(actor=Principal(), product_id=shirt.pk)
        assert not default_storage.exists(name)


def test_viewers_cannot_upload(gql, alpha, shirt):
    viewer = token_for(alpha.email("viewer"), alpha.tenant)
    before = _stored(alpha)
    response = _upload_one(gql, alpha, viewer, shirt, image_bytes())
    assert response.codes == ["FORBIDDEN"] and response.data is None
    assert _stored(alpha) == before


def test_a_value_that_is_not_a_file_is_a_user_error(gql, alpha, staff, shirt):
    response = gql.post(
        ONE,
        {"product": gid(alpha, "Product", shirt.pk), "file": "not a file", "alt": ""},
        host=alpha.host,
        token=staff,
    )
    assert [(e["field"], e["code"]) for e in response.data["productImageUpload"]["userErrors"]] == [
        ("file", "INVALID_IMAGE")
    ]


def test_an_upload_to_a_missing_product_stores_nothing(gql, alpha, staff):
    before = _stored(alpha)
    response = upload(
        gql,
        alpha,
        staff,
        ONE,
        {"product": gid(alpha, "Product", 999999), "file": None, "alt": ""},
        {"file": ("a.png", image_bytes())},
    )
    assert [(e["field"], e["code"]) for e in response.data["productImageUpload"]["userErrors"]] == [
        ("product", "NOT_FOUND")
    ]
    assert _stored(alpha) == before
