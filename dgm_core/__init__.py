"""dgm_core: deep generative models, their data and their honest evaluation, usable without any UI.

Train from the command line with ``python -m dgm_core --data moons --model RealNVP --steps 2000``.
"""
