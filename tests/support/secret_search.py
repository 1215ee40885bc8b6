"""Finding secrets in what tattle printed or wrote: every form in which a secret leaks."""

from __future__ import annotations

from urllib.parse import urlsplit


def forms_of(secret: str) -> list[str]:
    """The secret, and for a URL its path and every long segment of it: a message that
    names only the path or echoes only the token leaks just as much."""
    forms = [secret]
    if "://" in secret:
        parts = urlsplit(secret)
        path = parts.path + ("?" + parts.query if parts.query else "")
        if len(path) > 1:
            forms.append(path)
        forms += [segment for segment in path.replace("?", "/").replace("&", "/").split("/") if len(segment) >= 12]
    elif len(secret) > 12:
        forms.append(secret[:12])  # what is left of a secret when a message was cut short
    return forms


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    """'name: form' for every form of every secret found in text."""
    found = []
    for name, secret in secrets.items():
        for form in forms_of(secret):
            if form in text:
                found.append(f"{name}: {form}")
    return found
