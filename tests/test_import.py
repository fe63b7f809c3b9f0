"""Importing skbnn changes no global JAX setting and allocates nothing."""

import subprocess
import sys
import textwrap


def test_import_leaves_jax_configuration_alone():
    script = textwrap.dedent("""
        import jax
        names = sorted(n for n in jax.config.values)
        before = {n: repr(jax.config.values[n]) for n in names}
        import skbnn, skbnn.inference, skbnn.posterior
        after = {n: repr(jax.config.values[n]) for n in names}
        changed = [n for n in names if before[n] != after[n]]
        from jax._src import xla_bridge
        print(changed, len(xla_bridge._backends))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] 0"
