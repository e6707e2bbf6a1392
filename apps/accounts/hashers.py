"""How passwords are stored: argon2id at OWASP's recommended cost (Password Storage Cheat Sheet:
19 MiB of memory, two passes, one lane).

Django's default, PBKDF2-SHA256 at a million iterations, took 0.5 s a hash here, and a new
tenant pays two (the owner's password when it is made, the check when the owner signs in):
most of the time to a usable tenant (issue 17). Argon2id at this cost takes a fraction of that
while costing an attacker memory as well as time, which PBKDF2 does not. Django's own Argon2
defaults (100 MiB, eight lanes) would make each concurrent sign-in hold 100 MiB.

Hashes made before keep verifying (PBKDF2 stays in PASSWORD_HASHERS) and are re-made with this
one at the owner's next sign-in.
"""

from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class OwaspArgon2PasswordHasher(Argon2PasswordHasher):
    # The algorithm name stays "argon2": the parameters travel in each hash, so a later change of
    # cost re-hashes at sign-in (must_update) and old hashes still verify.
    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1
