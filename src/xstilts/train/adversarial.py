"""Adversarial training strategies at the loop's training step: FGM, PGD, FreeLB and SMART.

Each is a `loss_and_backward` strategy (see `loop.PlainTraining`): it runs one micro-batch through the
model several times and leaves the micro-batch's gradients accumulated in the parameters. All of them
perturb the *output of the word-embedding lookup* of each example (`MultiHeadModel(perturbation=...)`),
never the 250k-row embedding matrix, and only at real, non-special tokens: padding, <s> and </s> stay as
they are. Norms are per example (per row: each choice of a multiple-choice example is a row), over all of
its perturbed tokens; SMART normalises per token, as its reference implementation (mt-dnn) does.

Every forward pass of one micro-batch draws the same dropout masks (the random state is replayed), and
afterwards the random state stands where one plain forward would have left it; random starts come from the
strategy's own seeded generator (saved in training checkpoints). So with radius 0, or alpha 0, a strategy
trains exactly like plain training: the correctness tests compare the weights.

References: FGM, Miyato et al. 2017 (here the mean of the clean and adversarial losses: Adam does not see
the factor 2 of their sum); PGD, Madry et al. 2018 (sign steps for l-inf); FreeLB, Zhu et al. 2020
(zhuchen03/FreeLB `huggingface-transformers/examples/run_glue_freelb.py`: random start scaled by
1/sqrt(length x hidden), K ascent steps, loss / K, parameter gradients accumulated across them); SMART,
Jiang et al. 2020 (namisan/mt-dnn `mt_dnn/perturbation.py`: noise ~ N(0, 1e-5), one normalised ascent step
on the KL, symmetric KL added with weight alpha; Bregman proximal point against a momentum copy).
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F

from xstilts.config import FGMConfig, FreeLBConfig, PGDConfig, SMARTConfig
from xstilts.train.strategy import PlainTraining

TINY = 1e-12  # keeps normalisations of an all-zero gradient finite


# ------------------------------------------------------------------------------------------ geometry
def perturbable_mask(input_ids: torch.Tensor, attention_mask: torch.Tensor, special_ids) -> torch.Tensor:
    """(rows, length, 1) float mask of the tokens a perturbation may touch: real and not special
    (`special_ids`: the tokenizer's special token ids, a sequence or a tensor on the batch's device)."""
    if input_ids.dim() == 3:
        input_ids, attention_mask = input_ids.flatten(0, 1), attention_mask.flatten(0, 1)
    special = torch.as_tensor(special_ids, device=input_ids.device, dtype=input_ids.dtype)
    keep = attention_mask.bool() & ~torch.isin(input_ids, special)
    return keep.unsqueeze(-1).float()


def example_norms(delta: torch.Tensor, norm: str) -> torch.Tensor:
    """(rows, 1, 1): each example's l2 or l-inf norm over all of its tokens and dimensions."""
    flat = delta.flatten(1).float()
    values = flat.norm(dim=1) if norm == "l2" else flat.abs().amax(dim=1)
    return values.view(-1, 1, 1)


def project(delta: torch.Tensor, radius: float | None, norm: str) -> torch.Tensor:
    """`delta` moved into the per-example ball of `radius` (None: unbounded)."""
    if radius is None:
        return delta
    if norm == "linf":
        return delta.clamp(-radius, radius)
    factor = (radius / example_norms(delta, "l2").clamp_min(TINY)).clamp(max=1.0)
    return delta * factor.to(delta.dtype)


def ascent_direction(grad: torch.Tensor, norm: str, mask: torch.Tensor, *, sign: bool) -> torch.Tensor:
    """A per-example steepest-ascent step of unit size: l2, the gradient over its norm; l-inf, its sign
    (`sign`: PGD, FGM) or the gradient over its largest entry (FreeLB's l-inf normalisation)."""
    grad = grad * mask
    if norm == "linf" and sign:
        return grad.sign()
    return grad / example_norms(grad, norm).clamp_min(TINY).to(grad.dtype)


def hidden_size(model) -> int:
    return model.encoder.get_input_embeddings().embedding_dim


class _DropoutReplay:
    """Replays the random state so every forward of one micro-batch draws the same dropout masks. Each
    pass draws the same numbers, so after the last one the state stands where one plain forward leaves it.
    """

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.start = (torch.get_rng_state(), torch.cuda.get_rng_state() if self.cuda else None)

    def replay(self) -> None:
        """Before each forward after the first: the first forward's masks again."""
        torch.set_rng_state(self.start[0])
        if self.cuda:
            torch.cuda.set_rng_state(self.start[1])


class _Strategy:
    """What the embedding-space strategies share: the special tokens, a seeded generator for random
    starts (its state goes into training checkpoints) and the model call with a perturbation."""

    name = ""

    def __init__(self, config, special_ids, seed: int):
        self.config, self.special_ids, self.seed = config, tuple(special_ids), seed
        self._generator: torch.Generator | None = None
        self._generator_state: torch.Tensor | None = None
        self._special: torch.Tensor | None = None  # the special ids on the batches' device

    def generator(self, device: torch.device) -> torch.Generator:
        if self._generator is None:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.seed)
            if self._generator_state is not None:
                self._generator.set_state(self._generator_state)
        return self._generator

    def state_dict(self) -> dict:
        state = self._generator.get_state() if self._generator is not None else self._generator_state
        return {"generator": state}

    def load_state_dict(self, state: dict) -> None:
        self._generator_state, self._generator = state.get("generator"), None

    def after_optimizer_step(self, model) -> None:
        """Called once per optimizer step, after the update (SMART's momentum copy follows the model)."""

    @staticmethod
    def logits(model, stream, batch: dict, perturbation: torch.Tensor | None = None) -> torch.Tensor:
        kwargs = stream.kind.forward_kwargs(batch)
        if perturbation is not None:
            kwargs["perturbation"] = perturbation
        return model(batch["input_ids"], batch["attention_mask"], head=stream.spec.head_name, **kwargs)

    def inputs(self, model, batch: dict) -> tuple[torch.Tensor, tuple[int, int, int]]:
        """The perturbable mask and the (rows, length, hidden) shape of a perturbation of `batch`."""
        ids = batch["input_ids"]
        if self._special is None or self._special.device != ids.device:  # made once, not per batch
            self._special = torch.tensor(sorted(self.special_ids), device=ids.device, dtype=ids.dtype)
        mask = perturbable_mask(ids, batch["attention_mask"], self._special)
        return mask, (mask.shape[0], mask.shape[1], hidden_size(_unwrapped(model)))

    def plain(self, accelerator, model, stream, batch: dict, scale: float) -> torch.Tensor:
        """A stream the strategy does not perturb (the MLM baseline's) trains plainly."""
        return PlainTraining().loss_and_backward(accelerator, model, stream, batch, scale)


def _unwrapped(model):
    return getattr(model, "module", model)  # DDP wraps the MultiHeadModel


# ---------------------------------------------------------------------------------------- strategies
class PGD(_Strategy):
    """Clean loss; `steps` projected ascent steps from zero (the inner ones touch only the perturbation);
    then the loss at the final perturbation; their mean."""

    name = "pgd"

    def ascent(self) -> tuple[int, float]:
        """(ascent steps, step length)."""
        return self.config.steps, self.config.step_size

    def loss_and_backward(self, accelerator, model, stream, batch: dict, scale: float) -> torch.Tensor:
        if not stream.kind.perturbable:
            return self.plain(accelerator, model, stream, batch, scale)
        config, (steps, step_size) = self.config, self.ascent()
        mask, shape = self.inputs(model, batch)
        replay = _DropoutReplay(mask.device)
        delta = torch.zeros(shape, device=mask.device, requires_grad=True)
        clean = stream.kind.loss(self.logits(model, stream, batch, delta), batch)
        accelerator.backward(clean * (scale / 2))
        grad = delta.grad.detach()
        delta = delta.detach()
        for step in range(steps):
            delta = delta + step_size * ascent_direction(grad, config.norm, mask, sign=True)
            delta = project(delta * mask, config.radius, config.norm)
            if step < steps - 1:
                delta.requires_grad_()
                replay.replay()
                loss = stream.kind.loss(self.logits(model, stream, batch, delta), batch)
                (grad,) = torch.autograd.grad(loss, delta)
                delta = delta.detach()
        replay.replay()
        adversarial = stream.kind.loss(self.logits(model, stream, batch, delta), batch)
        accelerator.backward(adversarial * (scale / 2))
        return (clean.detach() + adversarial.detach()) / 2


class FGM(PGD):
    """Clean loss, then the loss at radius x the normalised gradient of the embedding output; their mean:
    PGD's one step to the ball's edge."""

    name = "fgm"

    def ascent(self) -> tuple[int, float]:
        return 1, self.config.radius


class FreeLB(_Strategy):
    """K ascent steps from a random start; each step's loss / K is backpropagated into the parameters, so
    their gradients average over the trajectory ("free" large-batch adversarial training)."""

    name = "freelb"

    def start(self, mask: torch.Tensor, shape) -> torch.Tensor:
        config = self.config
        if config.init_radius == 0:
            return torch.zeros(shape, device=mask.device)
        noise = torch.rand(shape, device=mask.device, generator=self.generator(mask.device)) * 2 - 1
        if config.norm == "linf":
            return project(noise * config.init_radius * mask, config.radius, "linf")
        lengths = mask.sum(dim=(1, 2)).clamp_min(1).view(-1, 1, 1)  # real (perturbable) tokens per row
        scaled = noise * mask * config.init_radius / torch.sqrt(lengths * shape[-1])
        return project(scaled, config.radius, "l2")

    def loss_and_backward(self, accelerator, model, stream, batch: dict, scale: float) -> torch.Tensor:
        if not stream.kind.perturbable:
            return self.plain(accelerator, model, stream, batch, scale)
        config = self.config
        mask, shape = self.inputs(model, batch)
        replay = _DropoutReplay(mask.device)
        delta = self.start(mask, shape)
        total = torch.zeros((), device=mask.device)
        for step in range(config.steps):
            delta.requires_grad_()
            if step:
                replay.replay()
            loss = stream.kind.loss(self.logits(model, stream, batch, delta), batch)
            accelerator.backward(loss * (scale / config.steps))
            total = total + loss.detach() / config.steps
            if step == config.steps - 1:
                break
            direction = ascent_direction(delta.grad.detach(), config.norm, mask, sign=False)
            delta = (delta.detach() + config.step_size * direction) * mask
            delta = project(delta, config.radius, config.norm)
        return total


def symmetric_kl(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """KL(p||q.detach) + KL(q||p.detach) of two (n, classes) log-probability tensors, averaged over n
    (mt-dnn's `SymKlCriterion`); 0 for an empty n."""
    if first.shape[0] == 0:
        return first.sum() * 0.0
    forward = F.kl_div(second.detach(), first, log_target=True, reduction="batchmean")
    backward = F.kl_div(first.detach(), second, log_target=True, reduction="batchmean")
    return forward + backward


class SMART(_Strategy):
    """Task loss + alpha x symmetric KL between clean and perturbed outputs (+ mu x the Bregman term)."""

    name = "smart"

    def __init__(self, config, special_ids, seed: int):
        super().__init__(config, special_ids, seed)
        self.momentum_model = None  # the Bregman proximal point's momentum copy (created on first use)
        self._momentum_state: dict | None = None  # a resumed copy's weights

    def loss_and_backward(self, accelerator, model, stream, batch: dict, scale: float) -> torch.Tensor:
        config = self.config
        if not stream.kind.perturbable or (config.alpha == 0 and config.bregman == 0):
            return self.plain(accelerator, model, stream, batch, scale)
        mask, shape = self.inputs(model, batch)
        replay = _DropoutReplay(mask.device)
        clean_logits = self.logits(model, stream, batch)
        objective = stream.kind.loss(clean_logits, batch)
        clean = stream.kind.output_log_probs(clean_logits, batch)
        if config.alpha:
            noise = torch.randn(shape, device=mask.device, generator=self.generator(mask.device))
            noise = (noise * config.noise_scale * mask).requires_grad_()
            replay.replay()
            noisy = stream.kind.output_log_probs(self.logits(model, stream, batch, noise), batch)
            kl = F.kl_div(clean.detach(), noisy, log_target=True, reduction="batchmean")
            (grad,) = torch.autograd.grad(kl, noise) if noisy.shape[0] else (torch.zeros_like(noise),)
            delta = self._per_token(noise.detach() + config.step_size * grad, mask)
            replay.replay()
            perturbed = stream.kind.output_log_probs(self.logits(model, stream, batch, delta), batch)
            objective = objective + config.alpha * symmetric_kl(perturbed, clean)
        if config.bregman:
            objective = objective + config.bregman * self._bregman(model, stream, batch, clean)
        accelerator.backward(objective * scale)
        return objective.detach()

    def _per_token(self, delta: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Each token's vector normalised (l2 or l-inf) and scaled to `radius` (mt-dnn `_norm_grad`)."""
        delta = delta * mask
        ord_ = 2 if self.config.norm == "l2" else math.inf
        size = torch.linalg.vector_norm(delta.float(), ord=ord_, dim=-1, keepdim=True).clamp_min(1e-6)
        return (delta / size.to(delta.dtype)) * self.config.radius * mask

    def _bregman(self, model, stream, batch: dict, clean: torch.Tensor) -> torch.Tensor:
        """Symmetric KL between the model and its momentum copy on the clean input (copy in eval mode)."""
        if self.momentum_model is None:
            self.momentum_model = copy.deepcopy(_unwrapped(model)).eval().requires_grad_(False)
            if self._momentum_state is not None:  # resumed: the copy as the checkpoint left it
                self.momentum_model.load_state_dict(self._momentum_state)
        with torch.no_grad():
            anchor = stream.kind.output_log_probs(self.logits(self.momentum_model, stream, batch), batch)
        return symmetric_kl(clean, anchor)

    def after_optimizer_step(self, model) -> None:
        """theta~ <- beta theta~ + (1 - beta) theta (SMART's momentum Bregman proximal point)."""
        if self.momentum_model is None:
            return
        beta = self.config.bregman_momentum
        with torch.no_grad():
            for copy_param, param in zip(
                self.momentum_model.parameters(), _unwrapped(model).parameters(), strict=True
            ):
                copy_param.mul_(beta).add_(param.detach(), alpha=1 - beta)

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.momentum_model is not None:
            state["momentum_model"] = {k: v.cpu() for k, v in self.momentum_model.state_dict().items()}
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._momentum_state = state.get("momentum_model")


STRATEGIES = {FGMConfig: FGM, PGDConfig: PGD, FreeLBConfig: FreeLB, SMARTConfig: SMART}


def build_strategy(config, special_ids, seed: int):
    """The training-step strategy of a phase's `adversarial` setting: an embedding-space strategy, or
    plain training (no setting, "plain", and the data strategies, whose copies the pipeline adds)."""
    strategy = STRATEGIES.get(type(config))
    return strategy(config, special_ids, seed) if strategy else PlainTraining()
