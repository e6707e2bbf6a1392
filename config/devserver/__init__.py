"""Development launcher: embedded PostgreSQL and Redis for `make run`, `make test` and `make bench`.

`python -m config.devserver exec -- CMD ...` or `python -m config.devserver run`; see __main__.py
for the modes and services.py for the servers and the layout of `.data/`.
"""
