"""Sources of the course notebooks, one module per notebook (each exposes `NAME` and `cells()`).

`tools/build_notebooks.py` turns them into the nbgrader source notebooks `solutions/NN_*.ipynb` and the
student release `notebooks/NN_*.ipynb`.
"""

from nbsrc import n01_serialisation, n02_minimal_api, n03_containerise, n04_health_metrics

NOTEBOOKS = (n01_serialisation, n02_minimal_api, n03_containerise, n04_health_metrics)

__all__ = ["NOTEBOOKS"]
