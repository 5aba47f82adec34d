"""The EMA teacher of semantic masking: exact update arithmetic, frozen and always in eval mode."""

from __future__ import annotations

import pytest
import torch

from masksem_core.model import MaskingConfig, MaskSemPretrainer, ModelConfig, TargetConfig
from masksem_core.model.teacher import ema_update, make_teacher


def tiny_cfg(drop_path: float = 0.0) -> ModelConfig:
    return ModelConfig(
        num_frames=16, num_joints=20, num_persons=1, dim=32, depth=2, heads=2, decoder_dim=32,
        decoder_depth=1, decoder_heads=2, layout="kinect_v1_20", drop_path=drop_path,
    )  # fmt: skip


def semantic(momentum: float = 0.99, drop_path: float = 0.0) -> MaskSemPretrainer:
    torch.manual_seed(0)
    return MaskSemPretrainer(tiny_cfg(drop_path), MaskingConfig(momentum=momentum), TargetConfig())


def fill(module: torch.nn.Module, value: float) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.fill_(value)


def test_ema_arithmetic_is_exact_on_dyadic_values() -> None:
    model = semantic(momentum=0.75)
    fill(model.teacher, 1.0)
    fill(model.encoder, 0.0)
    model.update_teacher()
    # 0.75 * 1 + 0.25 * 0 = 0.75, then 0.75 * 0.75 = 0.5625 (exact in binary floating point)
    assert all((p == 0.75).all() for p in model.teacher.parameters())
    model.update_teacher()
    assert all((p == 0.5625).all() for p in model.teacher.parameters())
    fill(model.encoder, 2.0)
    model.update_teacher()  # 0.75 * 0.5625 + 0.25 * 2 = 0.921875
    assert all((p == 0.921875).all() for p in model.teacher.parameters())
    assert all((p == 2.0).all() for p in model.encoder.parameters())  # the student is untouched


def test_ema_default_momentum_matches_formula() -> None:
    model = semantic()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(torch.randn(p.shape, generator=gen))
    before = [p.detach().clone() for p in model.teacher.parameters()]
    student = [p.detach().clone() for p in model.encoder.parameters()]
    model.update_teacher()
    for t_old, s, t_new in zip(before, student, model.teacher.parameters()):
        assert torch.allclose(t_new, 0.99 * t_old + 0.01 * s, rtol=0, atol=1e-6)
    # momentum 1 freezes the teacher, momentum 0 copies the student
    frozen, copied = semantic(momentum=1.0), semantic(momentum=0.0)
    for m in (frozen, copied):
        fill(m.encoder, 3.0)
    snapshot = [p.clone() for p in frozen.teacher.parameters()]
    frozen.update_teacher()
    copied.update_teacher()
    assert all(torch.equal(a, b) for a, b in zip(snapshot, frozen.teacher.parameters()))
    assert all((p == 3.0).all() for p in copied.teacher.parameters())


def test_ema_update_function_on_buffers() -> None:
    student = torch.nn.BatchNorm1d(4)
    teacher = make_teacher(student)
    with torch.no_grad():
        student.running_mean.fill_(4.0)
        student.num_batches_tracked.fill_(7)
    ema_update(teacher, student, momentum=0.5)
    assert teacher.running_mean.tolist() == [2.0] * 4  # float buffers are averaged
    assert teacher.num_batches_tracked.item() == 7  # integer buffers are copied


def test_teacher_starts_as_frozen_copy_and_gets_no_gradient() -> None:
    model = semantic()
    for (name, t), s in zip(model.teacher.state_dict().items(), model.encoder.state_dict().values()):
        assert torch.equal(t, s), name
    assert not any(p.requires_grad for p in model.teacher.parameters())
    out = model(torch.randn(2, 3, 16, 20, 1), generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())


def test_optimiser_step_moves_the_student_not_the_teacher() -> None:
    model = semantic()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    snapshot = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    model(torch.randn(2, 3, 16, 20, 1), generator=torch.Generator().manual_seed(0)).loss.backward()
    opt.step()
    assert all(torch.equal(snapshot[k], v) for k, v in model.teacher.state_dict().items())
    model.update_teacher()
    assert any(not torch.equal(snapshot[k], v) for k, v in model.teacher.state_dict().items())


def test_teacher_stays_in_eval_mode() -> None:
    model = semantic(drop_path=0.5)
    model.train()
    assert model.encoder.training and not model.teacher.training
    assert not any(m.training for m in model.teacher.modules())
    # with drop path on, the student is stochastic but the teacher (and so the CAM) is not
    x = torch.randn(2, 3, 16, 20, 1)
    from masksem_core.model.persons import select_present

    sel = select_present(x)
    assert torch.equal(model.semantic_weights(x, sel), model.semantic_weights(x, sel))
    with torch.no_grad():
        a, b = model.encoder.encode(sel.seqs), model.encoder.encode(sel.seqs)
    assert not torch.equal(a, b)
    model.eval()
    model.train(True)
    assert not model.teacher.training


def test_reset_teacher_copies_the_student() -> None:
    model = semantic()
    fill(model.encoder, 0.5)  # e.g. weights loaded with --init-from
    model.reset_teacher()
    assert all((p == 0.5).all() for p in model.teacher.parameters())
    assert not any(p.requires_grad for p in model.teacher.parameters())
    fill(model.encoder, 1.0)  # a copy, not shared storage
    assert all((p == 0.5).all() for p in model.teacher.parameters())


@pytest.mark.parametrize("strategy", ["random", "motion"])
def test_other_strategies_have_no_teacher(strategy: str) -> None:
    model = MaskSemPretrainer(tiny_cfg(), MaskingConfig(strategy=strategy), TargetConfig())
    assert model.teacher is None
    model.update_teacher()
    model.reset_teacher()  # harmless no-ops
    assert not any(k.startswith("teacher.") for k in model.state_dict())


def test_bf16_teacher_gives_close_cam() -> None:
    torch.manual_seed(0)
    cfg = tiny_cfg()
    x = torch.randn(4, 3, 16, 20, 1)
    from masksem_core.model.persons import select_present

    sel = select_present(x)
    weights = {}
    for bf16 in (False, True):
        torch.manual_seed(0)
        m = MaskSemPretrainer(cfg, MaskingConfig(cam_norm="minmax", teacher_bf16=bf16), TargetConfig())
        weights[bf16] = m.semantic_weights(x, sel)
    assert weights[True].dtype == torch.float32
    assert (weights[True] - weights[False]).abs().mean() < 0.05
