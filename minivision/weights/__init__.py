"""Small checkpoints written by ``minivision train`` (DESIGN.md §8): ``<model>_shapes.npz`` with a
``<model>_shapes.json`` manifest (command, seed, steps, commit, config and the measured metric).
Nothing here downloads; the files ship in the package."""
