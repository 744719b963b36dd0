"""Package layout that pyproject.toml cannot express alone: the code lives in src/, and the hardware
catalog at the repository root ships inside the wheel as `parasearch.hardware_catalog`."""

from setuptools import find_packages, setup

setup(
    packages=find_packages("src") + ["parasearch.hardware_catalog"],
    package_dir={"": "src", "parasearch.hardware_catalog": "hardware_catalog"},
)
