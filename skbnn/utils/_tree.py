"""Paths into nested parameter dicts (``{"network": {"dense_0": {"kernel": ...}}}``)."""

__all__ = ["drop_path", "flatten", "get_path", "set_path", "unflatten"]


def get_path(tree, path):
    """The sub-tree of ``tree`` at ``path`` (a tuple of keys; ``()`` is ``tree``)."""
    for name in path:
        tree = tree[name]
    return tree


def set_path(tree, path, value):
    """A copy of ``tree`` with the sub-tree at ``path`` replaced by ``value`` (created
    where missing); ``tree`` itself is not changed."""
    if not path:
        return value
    head, *rest = path
    return {**tree, head: set_path(tree.get(head, {}), tuple(rest), value)}


def drop_path(tree, path):
    """A copy of ``tree`` without the sub-tree at ``path`` (a non-empty tuple)."""
    head, *rest = path
    if not rest:
        return {k: v for k, v in tree.items() if k != head}
    return {**tree, head: drop_path(tree[head], tuple(rest))}


def flatten(tree, prefix=()):
    """A nested dict as ``{path tuple: leaf}`` (the inverse of :func:`unflatten`)."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(flatten(value, (*prefix, key)))
        else:
            out[(*prefix, key)] = value
    return out


def unflatten(flat):
    """``{path tuple: leaf}`` as a nested dict."""
    tree = {}
    for path, value in flat.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree
