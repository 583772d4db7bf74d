"""``from syft.service.dataset.dataset import Dataset, Asset, CreateAsset, ...``."""

from ..._pysyft import DataSubject
from ...datasets import Asset, AssetList, Contributor, Dataset, DatasetList

CreateAsset = Asset
CreateDataset = Dataset
DatasetPageView = DatasetList

__all__ = [
    "Asset",
    "AssetList",
    "Contributor",
    "CreateAsset",
    "CreateDataset",
    "DataSubject",
    "Dataset",
    "DatasetList",
    "DatasetPageView",
]
