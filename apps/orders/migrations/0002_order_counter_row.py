from django.db import migrations


def create_counter(apps, schema_editor):
    apps.get_model("orders", "OrderCounter").objects.get_or_create(pk=1, defaults={"last": 0})


class Migration(migrations.Migration):
    dependencies = [("orders", "0001_initial")]
    operations = [migrations.RunPython(create_counter, migrations.RunPython.noop)]
