"""Package discovery, the one thing pyproject.toml cannot say here: the repository root is itself the package
``lattice_talk`` (it is also the Blender extension), so its subpackages — code, and the data-only folders under
vendor_models/ — are found from the root and named under ``lattice_talk``. Everything else is in pyproject.toml."""

from setuptools import find_namespace_packages, setup

NOT_SHIPPED = ["tests", "tests.*", "tools", "tools.*", "docs", "docs.*", "build", "build.*", "dist", "dist.*",
               "out", "out.*", "*__pycache__*"]

setup(packages=["lattice_talk", *(f"lattice_talk.{name}" for name in find_namespace_packages(exclude=NOT_SHIPPED))])
