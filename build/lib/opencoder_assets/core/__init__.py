"""Pure libraries of every stage (no Dagster imports)."""


def require_extra(module: str, extra: str):
    """Import ``module`` or fail with the install command of the extra that provides it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{module} is not installed: pip install 'opencoder-assets[{extra}]' "
                          f"(or '.[{extra}]' from a checkout)") from exc
