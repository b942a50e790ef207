"""The course's benchmarks: the published polyphonic-music NLL table and the speed figures.

Run them with ``python -m benchmarks run`` (see ``benchmarks/README.md``).
"""
