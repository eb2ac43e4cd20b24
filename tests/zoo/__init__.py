"""Bugs users write in their own nets and data, each in a file of its own beside its healthy twin.

A user's package, as docs/extending.md describes it: `PRACTICUM_TRUST=zoo` trusts it, and
`hydra.searchpath=[file://<this folder>/conf]` makes its configs options
(`model=softmax_output`, `data=raw_digits`). tests/test_code_checks.py runs every bug through
`debug=checks` and a short run, and every twin through the same checks.
"""
