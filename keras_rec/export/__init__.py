"""SavedModel export for TF Serving, its `models.config` and sample requests."""

from keras_rec.export.saved_model import export_saved_model
from keras_rec.export.saved_model import export_towers
from keras_rec.export.saved_model import latest_version_path
from keras_rec.export.saved_model import list_versions
from keras_rec.export.saved_model import read_export_metadata
from keras_rec.export.saved_model import serving_input_signature
from keras_rec.export.tf_serving import write_sample_requests
from keras_rec.export.tf_serving import write_serving_config

__all__ = [
    "export_saved_model",
    "export_towers",
    "latest_version_path",
    "list_versions",
    "read_export_metadata",
    "serving_input_signature",
    "write_sample_requests",
    "write_serving_config",
]
