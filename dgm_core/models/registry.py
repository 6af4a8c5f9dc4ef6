"""The model registry: every model by family, with a human description and default settings per kind of data.

The UI lists ``MODELS`` and calls ``build_model``; it never needs to know a model's name in advance.
"""

from __future__ import annotations

from functools import partial

import torch

from dgm_core.data import Dataset, DataSpec
from dgm_core.models.autoregressive import MADE
from dgm_core.models.base import GenerativeModel
from dgm_core.models.conditional import CVAE, ConditionalGAN, ConditionalMADE
from dgm_core.models.diffusion import DDPM
from dgm_core.models.energy import EnergyBasedModel
from dgm_core.models.entries import ModelInfo, ModelOption, TrainingDefaults
from dgm_core.models.fgan import FGAN
from dgm_core.models.flow_matching import FlowMatching
from dgm_core.models.flows import MAF, NICE, Glow, NeuralSplineFlow, RealNVP
from dgm_core.models.gan import GAN
from dgm_core.models.large_images import large_image_arguments, large_image_defaults
from dgm_core.models.latent import IWAE, VAE, BetaVAE
from dgm_core.models.nade import FVSBN, NADE
from dgm_core.models.pixelcnn import PixelCNN
from dgm_core.models.score import NCSN
from dgm_core.models.transformer import Transformer
from dgm_core.models.vdm import VDM
from dgm_core.models.wgan import WGANGP

FAMILIES = {
    "autoregressive": "Autoregressive: p(x) = Π p(x_i | x_<i), exact likelihood, sequential sampling.",
    "flow": "Normalizing flow: an invertible map to a Gaussian, exact likelihood by change of variables.",
    "latent": "Latent variable: p(x) = ∫ p(x|z) p(z) dz, trained on a lower bound (the ELBO).",
    "implicit": "Implicit: a sampler trained against a discriminator; no likelihood at all.",
    "diffusion": "Diffusion, score-based and flow matching: learn to undo gradual Gaussian noising (or a straight path "
    "from noise); sample by many denoising or ODE steps.",
    "energy": "Energy-based: p(x) ∝ exp(−E(x)) with an unknown normaliser, trained and sampled by Langevin MCMC.",
}


BETA = ModelOption(
    "β (weight of the KL term)",
    minimum=0.0,
    maximum=16.0,
    step=0.1,
    defaults={"points2d": 1.1, "image": 4.0},
    info="β > 1 presses the code towards the prior: fewer, more independent latent factors, blurrier items. "
    "β = 1 is the plain VAE.",
)


ORDER = ModelOption(
    "generation order (0 = natural, k = random order no. k)",
    minimum=0,
    maximum=9,
    step=1,
    defaults={"points2d": 0, "image": 0},
    info="The order the masks follow: 0 generates pixels row by row (coordinates x then y); k ≥ 1 draws the k-th "
    "seeded random order. Every order gives an exact likelihood; the test NLL shows which is easier to learn.",
)


def _made(spec: DataSpec, hidden: int, order: float = 0) -> MADE:
    """MADE in natural order (0) or the random order seeded by ``order``."""
    if order != int(order):
        raise ValueError("The generation order is a whole number: 0 for natural, k for random order no. k.")
    return MADE(spec, hidden, order="natural" if order == 0 else "random", seed=int(order))


def _vae(spec: DataSpec, hidden: int) -> VAE:
    """On points, a prior mixing 16 learned Gaussians, with free bits (λ = 1 nat per latent dimension, on the whole
    KL). With N(0, I) the prior's centre decoded between the modes of 8gaussians (12 % of samples off them), and the
    Gaussian decoder's own noise blurred the moons: told apart from the data after 20 s in 5 of 5 seeds on
    8gaussians (`bench_recognisable`), and on moons unless samples showed the decoder's mean. With the mixture the
    honest draws x ~ p(x | z) pass on moons in 5 of 5 and on 8gaussians in 4 of 5. Without free bits one latent
    dimension collapses onto the prior within seconds (test NLL 3.8 nats where 2.9 with them, on 8gaussians)."""
    if spec.kind == "points2d":
        return VAE(spec, hidden, prior_components=16, free_nats=1.0)
    return VAE(spec, hidden, **large_image_arguments("VAE", spec))


def _gan(spec: DataSpec, hidden: int) -> GAN:
    """On points: z from 8 dimensions, Fourier features of z (2 octaves) in the generator, samples from the running
    average of its weights (ρ = 0.99). After 20 s on moons, with the average and one of the others 3–4 seeds in 5 were
    indistinguishable from the data, with all three 9 in 15, without any 0 in 5 (`bench_recognisable`). Its default
    on points, lr 1e-3 annealed by a cosine, passed on moons in 4 of 5 seeds and on 8gaussians in 2 of 5 (lr 3e-4,
    constant: 4 of 10 and 0 of 5): with a constant rate the modes' weights kept swinging (15–109 samples of 500 on a
    mode where 62 are due, in the last weights of 20 s runs)."""
    if spec.kind == "points2d":
        return GAN(spec, hidden, latent_dim=8, frequencies=2, average=0.99)
    return GAN(spec, hidden)


def _pixelcnn(spec: DataSpec, hidden: int) -> PixelCNN:
    return PixelCNN(spec, hidden, **large_image_arguments("PixelCNN", spec))


def _cvae(spec: DataSpec, hidden: int) -> CVAE:
    return CVAE(spec, hidden, **large_image_arguments("CVAE", spec))


def _beta_vae(spec: DataSpec, hidden: int, beta: float | None = None) -> BetaVAE:
    """β = 4 on images (warm-up over 400 steps). On 2D points every β ≥ 1.2 tried collapsed q(z|x) onto the prior
    within 400 steps, warm-up or not (a Gaussian decoder explains two coordinates more cheaply with its own noise):
    there β = 1.1, warmed up over 100 steps."""
    beta = BETA.defaults[spec.kind] if beta is None else beta
    return BetaVAE(spec, hidden, beta=beta, warmup_steps=400 if spec.kind == "image" else 100)


MODELS: dict[str, ModelInfo] = {
    info.name: info
    for info in [
        ModelInfo(
            "MADE",
            "autoregressive",
            "Masked autoencoder (Germain et al., 2015): one network whose masks make output i see only inputs < i. "
            "Mixture-of-Gaussians conditionals for points, categorical conditionals for pixels. Its masks can "
            "follow any order of the dimensions (the option below).",
            _made,
            {"points2d": TrainingDefaults(6000, 5e-3, 512, 128), "image": TrainingDefaults(2000, 1e-3, 128, 256)},
            options={"order": ORDER},
            representative=True,
        ),
        ModelInfo(
            "cMADE",
            "autoregressive",
            "Class-conditional MADE: p(x | y) = Π p(x_i | x_<i, y), the class label one more input that every hidden "
            "unit sees. You choose which digit to draw; its likelihood is exact, log p(x) = log Σ_y p(y) p(x | y), "
            "and so is Bayes' rule p(y | x) — a generative classifier.",
            ConditionalMADE,
            {"image": TrainingDefaults(2000, 1e-3, 128, 256)},
            needs_labels=True,
        ),
        ModelInfo(
            "FVSBN",
            "autoregressive",
            "Fully visible sigmoid belief net (Frey, 1998): each pixel's levels get a softmax of a linear function of "
            "the earlier pixels; no hidden units, O(D²) weights. The simplest model that beats independent pixels. "
            "On 2D points its linear-Gaussian conditionals would make it exactly the single-Gaussian baseline, so it "
            "is offered on images only.",
            lambda spec, hidden: FVSBN(spec),  # no hidden layer: the width does not apply
            {"image": TrainingDefaults(1300, 1e-2, 128, 64)},
        ),
        ModelInfo(
            "NADE",
            "autoregressive",
            "Neural autoregressive density estimator (Larochelle & Murray, 2011): one hidden layer per conditional, "
            "h_d = σ(c + W x_<d), its weights shared so all D layers cost one cumulative sum. Mixture-of-Gaussians "
            "conditionals on points (RNADE).",
            NADE,
            {"points2d": TrainingDefaults(3000, 1e-2, 512, 64), "image": TrainingDefaults(1400, 1e-2, 32, 64)},
        ),
        ModelInfo(
            "PixelCNN",
            "autoregressive",
            "PixelCNN (van den Oord et al., 2016): masked convolutions (mask A excludes the pixel itself, mask B "
            "after it includes it) in a vertical stack (rows above) and a horizontal stack (pixels to the left), "
            "whose receptive field grows over the earlier pixels with no blind spot. One pass scores all pixels; "
            "sampling takes one pass per pixel.",
            _pixelcnn,
            {"image": TrainingDefaults(2500, 3e-3, 16, 32)},
        ),
        ModelInfo(
            "Transformer",
            "autoregressive",
            "A causal transformer over the pixels in raster order (Image GPT in miniature): token and position "
            "embeddings, 2 blocks of self-attention where each pixel attends only to earlier ones, a softmax over "
            "the levels. Attention reaches any earlier pixel in one layer.",
            Transformer,
            {"image": TrainingDefaults(2000, 1e-2, 16, 32)},
        ),
        ModelInfo(
            "NICE",
            "flow",
            "NICE (Dinh et al., 2014), the first coupling flow: half the coordinates shift the other half, "
            "alternating, then one diagonal scaling. Shifts preserve volume, so unlike RealNVP's the log-determinant "
            "is one constant: the density gets its shape only from where the map moves points. On mirror-symmetric "
            "sets (rings, circles, 8 Gaussians) it can stall at the single Gaussian: there a shift's gradient is zero.",
            NICE,
            {"points2d": TrainingDefaults(1500, 2e-3, 512, 64), "image": TrainingDefaults(600, 3e-3, 128, 128)},
        ),
        ModelInfo(
            "RealNVP",
            "flow",
            "Affine coupling flow (Dinh et al., 2017): half the coordinates scale and shift the other half, "
            "alternating. Exact density on points; on pixels a bound through uniform dequantization.",
            RealNVP,
            # points: lr 5e-3 annealed by a cosine (2e-3 constant before) is recognisable on 8gaussians after 20 s in
            # 5 of 5 seeds (1 of 3), and its 1,800-step click ends lower: 1.738 / 2.102 bits on moons / 8gaussians
            # against 1.765 / 2.137 (`bench_recognisable`, `bench_defaults`)
            {
                "points2d": TrainingDefaults(1800, 5e-3, 512, 64, schedule="cosine"),
                "image": TrainingDefaults(700, 1e-3, 128, 128),
            },
            representative=True,
        ),
        ModelInfo(
            "Glow",
            "flow",
            "Glow (Kingma & Dhariwal, 2018): each step is actnorm (initialised from the first batch), a learned "
            "invertible linear map in LU form (cheap log-determinant) and an affine coupling. Where RealNVP fixes "
            "which coordinates condition which, Glow learns how to mix them.",
            Glow,
            {"points2d": TrainingDefaults(1500, 2e-3, 512, 64), "image": TrainingDefaults(650, 1e-3, 128, 128)},
        ),
        ModelInfo(
            "MAF",
            "flow",
            "Masked autoregressive flow (Papamakarios et al., 2017): stacked MADEs, each shifting and scaling x_i by "
            "functions of x_<i, the order reversed between layers. The density is one pass, but sampling takes D "
            "sequential passes (the inverse autoregressive flow makes the opposite trade). An affine coupling is the "
            "special case with only two blocks in the order.",
            MAF,
            {"points2d": TrainingDefaults(3000, 5e-3, 512, 64), "image": TrainingDefaults(1200, 1e-3, 128, 128)},
        ),
        ModelInfo(
            "NSF",
            "flow",
            "Neural spline flow (Durkan et al., 2019): couplings whose elementwise map is a monotone "
            "rational-quadratic spline (32 bins on [−3, 3], [−4, 4] in the last two so the latent reaches the "
            "Gaussian's tails; the identity outside), inverted in closed form. Where "
            "affine couplings only scale and shift, a spline can bend, so fewer layers fit a many-moded density. "
            "On 2D points each coupling's network reads sines and cosines of the fixed coordinate at four "
            "frequencies (Fourier features), so its knots can jump where a square or a ring ends.",
            NeuralSplineFlow,
            {
                "points2d": TrainingDefaults(1000, 1e-2, 512, 64, schedule="cosine"),
                "image": TrainingDefaults(800, 1e-3, 128, 128),
            },
        ),
        ModelInfo(
            "VAE",
            "latent",
            "Variational autoencoder (Kingma & Welling, 2014): Gaussian encoder q(z|x), decoder p(x|z) fitting the "
            "data type; trained on the ELBO, a lower bound on log p(x). On 28×28 images its prior is a VampPrior "
            "(a mixture of the posteriors of 200 learned pseudo-inputs) and each pixel's decoder a discretized "
            "logistic, so that prior draws decode to digits in a minute. On 2D points its prior mixes 16 learned "
            "Gaussians, which move to where the encoder puts each mode's codes: a single N(0, I) has no gaps, and "
            "its centre decoded to points between the modes. There it trains with free bits (Kingma et al., 2016): "
            "a KL under 1 nat per latent dimension is not pressed onto the prior, so both dimensions get used "
            "(without them one collapses and the samples blur); the score is the ELBO all the same.",
            _vae,
            {"points2d": TrainingDefaults(3000, 3e-3, 512, 128), "image": TrainingDefaults(1200, 1e-3, 128, 256)},
            representative=True,
        ),
        ModelInfo(
            "IWAE",
            "latent",
            "Importance-weighted autoencoder (Burda et al., 2016): the VAE's model trained on the k = 8 sample bound "
            "log (1/k) Σ p(x, z_i)/q(z_i|x), tighter than the ELBO; the posterior may spread wider.",
            IWAE,
            {"points2d": TrainingDefaults(1500, 1e-3, 512, 128), "image": TrainingDefaults(800, 1e-3, 128, 256)},
        ),
        ModelInfo(
            "β-VAE",
            "latent",
            "β-VAE (Higgins et al., 2017): the VAE trained on reconstruction + β·KL. β > 1 presses q(z|x) toward the "
            "factorised prior, which favours disentangled latents (one factor of variation per coordinate) at the "
            "price of blurrier reconstructions and a looser ELBO; β < 1 does the opposite. β ramps up from 0 (KL "
            "warm-up) so the decoder learns to use z before the KL term can collapse q onto the prior. Scored on the "
            "honest ELBO (β = 1). β = 4 on images (warm-up 400 steps); on 2D points already β ≈ 1.5 collapses q "
            "onto the prior, so there β = 1.1 (warm-up 100 steps).",
            _beta_vae,
            {"points2d": TrainingDefaults(3000, 3e-3, 512, 128), "image": TrainingDefaults(3000, 1e-3, 128, 256)},
            options={"beta": BETA},
        ),
        ModelInfo(
            "CVAE",
            "latent",
            "Conditional VAE (Sohn et al., 2015): encoder q(z|x, y) and decoder p(x|z, y) also read the class label y, "
            "so you choose which digit to draw and z only has to hold the style. Its likelihood takes no label: "
            "log p(x) ≥ log Σ_y p(y) exp ELBO(x|y), with p(y) the training class frequencies.",
            _cvae,
            {"image": TrainingDefaults(800, 1e-3, 128, 256)},
            needs_labels=True,
        ),
        ModelInfo(
            "GAN",
            "implicit",
            "Generative adversarial network (Goodfellow et al., 2014) with the non-saturating generator loss. "
            "No likelihood: judged by a two-sample test (MMD) against held-out data. On 2D points z has 8 "
            "dimensions, the generator reads sines and cosines of z (Fourier features) and samples come from the "
            "running average of its weights (Yazıcı et al., 2019), which smooths the players' oscillation out: "
            "fewer samples fall between the modes. There its learning rate, 1e-3, falls to 0 along a cosine over "
            "the steps or the time budget: the players settle instead of trading mass between the modes to the end.",
            _gan,
            {
                "points2d": TrainingDefaults(3000, 1e-3, 256, 128, "cosine"),
                "image": TrainingDefaults(3000, 5e-4, 128, 256),
            },
            representative=True,
        ),
        ModelInfo(
            "cGAN",
            "implicit",
            "Conditional GAN (Mirza & Osindero, 2014): G(z, y) and D(x, y) both read the class label y, so D judges "
            "whether x is a real item of class y and you choose which digit G draws. No likelihood.",
            ConditionalGAN,
            {"image": TrainingDefaults(3000, 5e-4, 128, 256)},
            needs_labels=True,
        ),
        ModelInfo(
            "WGAN-GP",
            "implicit",
            "Wasserstein GAN with gradient penalty (Gulrajani et al., 2017): the critic (no sigmoid) estimates the "
            "earth mover's distance E_data[D] − E_model[D] over 1-Lipschitz D, kept near 1-Lipschitz by a penalty "
            "10·(‖∇D‖ − 1)² at points between real and fake items; 5 critic steps per generator step. Its critic "
            "gives useful gradients even when the two distributions do not overlap, and its estimate tracks quality.",
            WGANGP,
            {"points2d": TrainingDefaults(1500, 1e-3, 1024, 64), "image": TrainingDefaults(1500, 5e-4, 128, 256)},
        ),
        ModelInfo(
            "f-GAN (KL)",
            "implicit",
            "f-GAN (Nowozin et al., 2016) for KL(data ‖ model): the discriminator maximises a variational lower bound "
            "E_data[T] − E_model[exp(T − 1)] on the divergence. KL(data ‖ model) punishes missing any mode of the "
            "data, so the generator spreads out to cover them all.",
            partial(FGAN, divergence="KL"),
            {"points2d": TrainingDefaults(3000, 1e-3, 256, 128), "image": TrainingDefaults(3000, 5e-4, 128, 256)},
        ),
        ModelInfo(
            "f-GAN (reverse KL)",
            "implicit",
            "f-GAN (Nowozin et al., 2016) for the reverse KL(model ‖ data): punishes generating where there is no "
            "data but not missing modes, so the generator may settle on a few modes and draw them sharply.",
            partial(FGAN, divergence="reverse KL"),
            {"points2d": TrainingDefaults(1500, 3e-4, 256, 128), "image": TrainingDefaults(3000, 5e-4, 128, 256)},
        ),
        ModelInfo(
            "f-GAN (JS)",
            "implicit",
            "f-GAN (Nowozin et al., 2016) for the Jensen–Shannon divergence: the discriminator maximises a lower "
            "bound on 2·JS(data, model) ∈ [0, log 4], logged as its 'divergence'. Its losses differ from the GAN "
            "entry's by constants, so it trains the same: the f-GAN view shows the GAN minimising a divergence.",
            partial(FGAN, divergence="JS"),
            {"points2d": TrainingDefaults(1500, 3e-4, 256, 128), "image": TrainingDefaults(3000, 5e-4, 128, 256)},
        ),
        ModelInfo(
            "DDPM",
            "diffusion",
            "Denoising diffusion (Ho et al., 2020): T = 100 fixed steps add Gaussian noise until only N(0, I) is left; "
            "a network learns to predict the added noise, and sampling runs the T denoising steps backwards. Its "
            "likelihood is the variational bound summed over the steps (a discretised Gaussian last step on pixels).",
            DDPM,
            {
                "points2d": TrainingDefaults(6000, 1e-2, 512, 128, schedule="cosine"),
                "image": TrainingDefaults(3000, 3e-3, 128, 256),
            },
            representative=True,
        ),
        ModelInfo(
            "VDM",
            "diffusion",
            "Variational diffusion in continuous time (Kingma et al., 2021): the noise level is a log signal-to-noise "
            "ratio λ from 10 (almost clean) to −10 (pure noise), and the bound is an integral over it instead of a "
            "sum over T steps. The denoiser guesses each pixel's grey level as a probability over the 17 levels — "
            "what the pixel's own noisy value says, corrected by an MLP that reads the whole image — so its bound "
            "beats independent pixels, which DDPM's does not. Sampling takes 100 passes.",
            VDM,
            {"image": TrainingDefaults(3000, 2e-3, 128, 256, schedule="cosine")},
        ),
        ModelInfo(
            "NCSN",
            "diffusion",
            "Noise-conditional score network (Song & Ermon, 2019): learns the gradient of the log-density of the data "
            "blurred at 10 noise levels by denoising score matching, and samples by annealed Langevin dynamics from "
            "coarse to fine. No likelihood: judged by MMD.",
            NCSN,
            {"points2d": TrainingDefaults(3000, 3e-3, 256, 64), "image": TrainingDefaults(3000, 1e-3, 128, 256)},
        ),
        ModelInfo(
            "Flow matching",
            "diffusion",
            "Flow matching (Lipman et al., 2023; rectified flow, Liu et al., 2023): each data point is joined to a "
            "Gaussian draw by a straight line, and a network regresses the velocity along these lines. Sampling "
            "follows the learned velocity from noise to data by 100 Euler steps (fewer cut the corners). The ODE is "
            "invertible, so its likelihood is exact: by the instantaneous change of variables, integrated backward "
            "with RK4 (8 steps) and the exact divergence in 2D.",
            FlowMatching,
            {"points2d": TrainingDefaults(3000, 3e-3, 1024, 64, schedule="cosine")},
        ),
        ModelInfo(
            "EBM",
            "energy",
            "Energy-based model: an MLP energy E(x), trained by contrastive divergence — push the energy of data down "
            "and that of 20-step Langevin samples up (Nijkamp et al., 2019; Du & Mordatch, 2019). The normaliser is "
            "unknown, so no likelihood: judged by MMD. On 2D points the energy network reads sines and cosines of each "
            "coordinate at two frequencies (Fourier features), so its wells become as narrow as the data's modes "
            "within seconds; without them 8gaussians' modes came out a third too wide.",
            EnergyBasedModel,
            {"points2d": TrainingDefaults(1500, 4e-3, 128, 64), "image": TrainingDefaults(1200, 1e-3, 128, 128)},
            representative=True,
        ),
    ]
}


def models_by_family() -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {family: [] for family in FAMILIES}
    for info in MODELS.values():
        grouped[info.family].append(info.name)
    return grouped


def supports(name: str, data: Dataset) -> bool:
    """Whether model ``name`` can train on ``data`` (its kind of data, and class labels if it needs them)."""
    info = MODELS[name]
    return data.spec.kind in info.defaults and (not info.needs_labels or "train" in data.labels)


def models_for(data: Dataset) -> list[str]:
    return [name for name in MODELS if supports(name, data)]


def unsupported_reason(name: str, data: Dataset) -> str | None:
    """A sentence saying why ``name`` cannot train on ``data``, or None when it can."""
    info = MODELS[name]
    if data.spec.kind not in info.defaults:
        kinds = " or ".join("2D points" if kind == "points2d" else "images" for kind in info.defaults)
        return f"{name} works on {kinds}, not on {data.spec.name}."
    if info.needs_labels and "train" not in data.labels:
        return f"{name} is conditional: it needs class labels, and {data.spec.name} has none."
    return None


def defaults_for(name: str, spec: DataSpec) -> TrainingDefaults:
    """The model's defaults for the data's kind, or for its size where that differs (``large_images``)."""
    if spec.kind not in MODELS[name].defaults:
        raise ValueError(f"{name} does not work on {spec.name} ({spec.kind}).")
    return large_image_defaults(name, spec) or MODELS[name].defaults[spec.kind]


def build_model(
    name: str, spec: DataSpec, hidden: int | None = None, seed: int = 0, **options: float
) -> GenerativeModel:
    """A freshly initialised model for data described by ``spec`` (same seed, same weights); ``options`` set the
    model's declared ``ModelInfo.options`` (the rest keep their defaults). The settings are taken as they are: what
    they may be is ``RunSpec.check``'s to say."""
    if name not in MODELS:
        raise ValueError(f"Unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    torch.manual_seed(seed)
    return MODELS[name].make(spec, hidden=hidden or defaults_for(name, spec).hidden, **options)
