"""The selection compiler: hot list queries served from one SQL statement that builds their JSON
(schema/compiler/extension.py), byte for byte what the resolver path gives."""
