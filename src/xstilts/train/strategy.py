"""The training step's seam: a strategy turns one micro-batch into a loss and accumulated gradients.

`PlainTraining` is the default. A strategy's `loss_and_backward(accelerator, model, stream, batch, scale)`
may run several forward and backward passes (perturbed inputs, extra terms) as long as it leaves the
micro-batch's gradients, times `scale`, accumulated in the parameters and returns the loss to report.
Optional: `after_optimizer_step(model)` (called after each update) and `state_dict` / `load_state_dict`
(kept in exact training checkpoints). The adversarial strategies are in `adversarial.py`.
"""

from __future__ import annotations


class PlainTraining:
    """The default strategy: a micro-batch's task loss, backpropagated with the accumulation scale."""

    name = "plain"

    def loss_and_backward(self, accelerator, model, stream, batch: dict, scale: float):
        logits = model(
            batch["input_ids"],
            batch["attention_mask"],
            head=stream.spec.head_name,
            **stream.kind.forward_kwargs(batch),
        )
        loss = stream.kind.loss(logits, batch)
        accelerator.backward(loss * scale)
        return loss.detach()
