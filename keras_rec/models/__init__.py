"""Model builders: recall (DSSM, YoutubeDNN) and ranking (DeepFM, DIN, WDL, DCN)."""

from keras_rec.models.dcn import DCN
from keras_rec.models.deepfm import DeepFM
from keras_rec.models.din import DIN
from keras_rec.models.dssm import DSSM
from keras_rec.models.ranking_model import RankingModel
from keras_rec.models.two_tower import TwoTowerModel
from keras_rec.models.wdl import WDL
from keras_rec.models.youtube_dnn import YoutubeDNN

__all__ = [
    "DCN",
    "DIN",
    "DSSM",
    "DeepFM",
    "RankingModel",
    "TwoTowerModel",
    "WDL",
    "YoutubeDNN",
]
