"""How contact details look to the roles that see them redacted (analysts, viewers): one rule for
the API (schema/customers.py) and for exports (apps/exports)."""


def masked_email(email: str) -> str:
    """a***@domain: the first letter and the domain."""
    if not email:
        return ""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def masked_phone(phone: str) -> str:
    """+*******42: only the last two digits."""
    return phone and "+" + "*" * (len(phone) - 3) + phone[-2:]
