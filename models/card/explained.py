"""What the card quotes from ``explain/metrics.json``: Grad-CAM, feature visualizations, the unfamiliar-input score."""

from __future__ import annotations

from typing import Any

from models.analysis.concepts import CONV_LAYERS
from models.card.text import pct, table

# Grad-CAM "localizes" at a layer when its mean inside the object is at least this many times outside.
LOCALIZES = 2.0

ADDS_UP = {"for": "channels weighted positively (evidence for the class)",
           "against": "channels weighted negatively (evidence against), sign flipped",
           "gradient_x_activation": "position-wise gradient x activation (no spatial averaging)"}
OOD_METHODS = ("exposure", "combined", "combined_per_class", "energy", "mahalanobis")


def conv5_ratio(explain: dict[str, Any] | None) -> float | None:
    """Grad-CAM's inside/outside ratio at conv5, when measured."""
    conv5 = ((explain or {}).get("gradcam") or {}).get(CONV_LAYERS["conv5"])
    return None if conv5 is None else float(conv5["ratio"])


def gradcam_context(cam: dict[str, Any]) -> dict[str, Any]:
    rows = [[f"{t} (`{CONV_LAYERS[t]}`)", f"{x['mean_inside']:.3f}", f"{x['mean_outside']:.3f}", f"{x['ratio']:.2f}",
             pct(x["share_images_inside_gt_outside"], 0)]
            for t in ("conv5", "conv4", "conv3") if (x := cam.get(CONV_LAYERS[t]))]
    parts = cam.get("parts") or {}
    adds_up = [[label, f"{parts[k]['ratio']:.2f}", pct(parts[k]["share_images_inside_gt_outside"], 0)]
               for k, label in ADDS_UP.items() if k in parts]
    return {
        "cam": cam, "table": table(["layer", "inside", "outside", "ratio", "scenes inside > outside"], rows),
        "parts": table(["part", "inside / outside", "scenes inside > outside"], adds_up) if parts else None,
    }


def ood_table(measured: dict[str, Any], shipped: str | None) -> str:
    rows = [[method + (" (shipped)" if method == shipped else ""), f"{r['auroc_photo_crops']:.3f}",
             pct(r["photo_samples_flagged"]), pct(r["whole_photos_flagged"], 0), pct(r["photo_crops_flagged"]),
             pct(r["lfw_faces_flagged"], 0), pct(r["generated_flagged"]), pct(r["generated_flagged_max_class"]),
             pct(r["jpeg_world_flagged"]), pct(r["resized_world_flagged"]), pct(r["synthetic_outliers_flagged"])]
            for method in OOD_METHODS if (r := measured.get(method)) and "photo_samples_flagged" in r]
    return table(["score", "AUROC photo crops", "photos flagged", "whole photos", "crops", "LFW faces",
                  "generated flagged", "worst class", "generated, JPEG", "generated, resized",
                  "held-out synthetic outliers"], rows)


def explain_context(explain: dict[str, Any] | None) -> dict[str, Any] | None:
    if not explain:
        return None
    cam, fv, measured = explain.get("gradcam"), explain.get("featvis_shipped"), explain.get("ood_measurement")
    ood = explain.get("ood") or {}
    ratio = conv5_ratio(explain)
    return {
        "gradcam": gradcam_context(cam) if cam else None,
        "localizes": ratio is not None and ratio >= LOCALIZES, "conv5_ratio": ratio,
        "featvis": fv and {**fv, "share": pct(fv["share"])},
        "ood": measured and {
            "m": measured, "ood": ood, "percentile": f"{ood['percentile']:g}",
            "other_percentile": f"{ood.get('other_percentile', ood['percentile']):g}",
            "table": ood_table(measured, ood.get("method")),
            "photos_flagged": pct(measured[ood["method"]]["photo_samples_flagged"]) if ood.get("method") else "",
            "generated_flagged": pct(measured[ood["method"]]["generated_flagged"]) if ood.get("method") else "",
        },
    }
