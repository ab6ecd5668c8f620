"""The teacher-student wrapper end to end: freezing, zero-weight equivalence, heterogeneous
pairs, every packaged distillation config, resume, export and a 2-process launch."""

import copy
import os
import subprocess
import sys

import pytest
import torch
from detectron2.config import LazyConfig, instantiate
from detectron2.utils.events import EventStorage

import detrdistill  # noqa: F401
from detrdistill import model_zoo
from detrdistill.distill.export import export_student
from detrdistill.engine import do_eval_only, do_train
from tests.helpers import tiny_pair_overrides

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHAPES_DISTILL_CONFIGS = [
    name
    for name in model_zoo.list_configs()
    if name.startswith(("detrdistill/shapes", "d3etr/shapes", "kd_detr/shapes"))
]
MAIN_CONFIG = "detrdistill/shapes_deformable_tiny.py"


def shrink(model, *, hidden, dec_layers, queries, width=8):
    """Make a packaged detector config tiny (keeps its variant and options)."""
    model.backbone.width = width
    model.update(hidden_dim=hidden, num_queries=queries)
    model.position_embedding.num_pos_feats = hidden // 2
    model.encoder.update(num_layers=1, num_heads=4, ffn_dim=2 * hidden)
    model.decoder.update(num_layers=dec_layers, num_heads=4, ffn_dim=2 * hidden)


def tiny_distill_config(name, tmp_path, max_iter=2, **weights):
    cfg = model_zoo.get_config(name)
    # heterogeneous on purpose: the student is narrower, shallower and has fewer queries
    shrink(cfg.model.student, hidden=32, dec_layers=2, queries=6)
    shrink(cfg.model.teacher, hidden=48, dec_layers=3, queries=8)
    cfg.model.teacher_weights = ""
    cfg.model.allow_random_teacher = True
    for loss in cfg.model.losses.values():
        if "top_k" in loss:
            loss.top_k = 10
    cfg.model.loss_weights.update(weights)
    root = str(tmp_path / "data")
    tag = tmp_path.name  # dataset names are global: one per test directory
    cfg.dataloader.train.dataset.update(name=f"train_{tag}", num_images=6, root=root)
    cfg.dataloader.test.dataset.update(name=f"val_{tag}", num_images=2, root=root)
    cfg.dataloader.train.update(total_batch_size=2, num_workers=0)
    cfg.dataloader.test.num_workers = 0
    cfg.train.update(
        max_iter=max_iter, output_dir=str(tmp_path / "out"), eval_period=0, log_period=1, seed=0
    )
    cfg.train.checkpointer.period = 1
    return cfg


def tiny_batch(seed=0):
    from detectron2.structures import Boxes, Instances

    gen = torch.Generator().manual_seed(seed)
    batch = []
    for h, w in [(64, 64), (48, 64)]:
        instances = Instances((h, w))
        instances.gt_boxes = Boxes(torch.tensor([[4.0, 6.0, 30.0, 40.0], [20.0, 10.0, 44.0, 40.0]]))
        instances.gt_classes = torch.tensor([1, 4])
        image = torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=gen)
        batch.append({"image": image, "instances": instances})
    return batch


def train_steps(model, steps, lr=1e-3, optimizer_class=torch.optim.AdamW):
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer_class is torch.optim.SGD:
        optimizer = torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=1e-4)
    else:
        optimizer = optimizer_class(params, lr=lr, weight_decay=1e-4)
    model.train()
    with EventStorage():
        for step in range(steps):
            losses = model(tiny_batch(step))
            optimizer.zero_grad()
            sum(losses.values()).backward()
            torch.nn.utils.clip_grad_norm_(params, 0.1)
            optimizer.step()
    return optimizer


def test_teacher_is_frozen_in_eval_mode_and_never_changes(tmp_path):
    cfg = tiny_distill_config(MAIN_CONFIG, tmp_path)
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    before = copy.deepcopy(model.teacher.state_dict())
    model.train()
    assert not model.teacher.training and model.student.training
    assert all(not p.requires_grad for p in model.teacher.parameters())
    optimizer = train_steps(model, 2)
    optimized = {id(p) for group in optimizer.param_groups for p in group["params"]}
    assert not optimized & {id(p) for p in model.teacher.parameters()}
    assert all(p.grad is None for p in model.teacher.parameters())
    after = model.teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # buffers (BN stats) too
    # the DETR param groups used by the configs leave the teacher out as well
    cfg.optimizer.params.model = model
    groups = instantiate(cfg.optimizer).param_groups
    assert not {id(p) for g in groups for p in g["params"]} & {
        id(p) for p in model.teacher.parameters()
    }


@pytest.mark.parametrize("method", ["detrdistill", "d3etr", "kd_detr"])
def test_zero_weights_train_exactly_like_the_plain_student(tmp_path, method):
    """Teacher, extra query group and zero-weighted terms leave student training unchanged.

    End to end through ``do_train`` with the config's own training loader (its default worker
    count and augmentation): building the teacher must not change the data (the loader is
    seeded from ``train.seed``, not from the global RNG left after building the model), and the
    losses must match step for step. Both runs start from the same student weights
    (``train.init_checkpoint``). SGD with momentum and the trainer's gradient clipping, not
    AdamW: the extra (zero-gradient) adapter parameters change the summation order of the
    global grad norm by one ulp, and Adam turns the pure-noise gradients of biases that
    GroupNorm cancels into full +-lr steps, which would hide real differences behind 1e-4 noise.
    SGD shows any real leak (a teacher gradient, changed BatchNorm statistics, RNG consumed, a
    perturbed own-query output) just the same.
    """
    from detectron2.config import LazyCall as L

    name = f"{method}/shapes_deformable_tiny.py"
    cfg = tiny_distill_config(name, tmp_path, max_iter=3)
    cfg.dataloader.train.num_workers = model_zoo.get_config(name).dataloader.train.num_workers
    assert cfg.dataloader.train.num_workers > 0  # the default loader, with worker processes
    del cfg.dataloader["evaluator"]  # no evaluation after the last iteration
    cfg.train.checkpointer.period = 1000
    cfg.optimizer = L(torch.optim.SGD)(
        params=cfg.optimizer.params, lr=0.05, momentum=0.9, weight_decay=1e-4
    )
    if method == "detrdistill":  # every DETRDistill term, the optional contrastive one included
        library = LazyConfig.load(model_zoo.get_config_file("common/distill_losses.py"))
        cfg.model.losses["contrastive"] = library.detrdistill_losses.contrastive
        cfg.model.loss_weights["contrastive"] = 0.0
    for key in cfg.model.loss_weights:
        cfg.model.loss_weights[key] = 0.0
    torch.manual_seed(0)
    init = str(tmp_path / "student_init.pth")
    torch.save({"model": instantiate(cfg.model.student).state_dict()}, init)
    cfg.train.init_checkpoint = init

    def train(config, output_dir):
        config = copy.deepcopy(config)
        config.train.output_dir = str(tmp_path / output_dir)
        torch.manual_seed(0)  # as train_net's setup does from train.seed
        trainer = do_train(config)
        histories = trainer.storage.histories()
        losses = {k: dict((i, v) for v, i in h.values()) for k, h in histories.items()}
        return trainer.model, {k: v for k, v in losses.items() if k.startswith("loss_")}

    plain_cfg = copy.deepcopy(cfg)
    plain_cfg.model = cfg.model.student
    plain, plain_losses = train(plain_cfg, "plain")
    wrapper, wrapper_losses = train(cfg, "zero")
    assert plain_losses and set(plain_losses) <= set(wrapper_losses)
    step_diff = max(
        abs(wrapper_losses[k][i] - v) for k, steps in plain_losses.items() for i, v in steps.items()
    )
    assert step_diff <= 1e-5, f"student losses differ by up to {step_diff}"
    distilled = wrapper.student.state_dict()
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(distilled[key], value, atol=1e-5, rtol=0, msg=key)
    # ... while non-zero weights do change the student (the test is not vacuous)
    cfg.model.loss_weights.update({key: 1.0 for key in cfg.model.loss_weights})
    weighted, _ = train(cfg, "weighted")
    trained = weighted.student.state_dict()
    diffs = [(trained[k] - v).abs().max() for k, v in plain.state_dict().items()]
    assert max(diffs) > 1e-4


def test_auxiliary_group_does_not_change_the_students_own_outputs(tmp_path):
    """In training mode (where the group is built), the student's own queries give the same
    outputs with and without the teacher-query group in the decoder pass (no dropout in the
    tiny models: deterministic), while the group itself is decoded."""
    cfg = tiny_distill_config(MAIN_CONFIG, tmp_path)
    torch.manual_seed(0)
    model = instantiate(cfg.model).train()
    student = model.student
    assert list(model.group_builders) == ["teacher_queries"] and student.training
    modules = list(student.modules())
    assert all(m.p == 0 for m in modules if isinstance(m, torch.nn.Dropout))
    batch = tiny_batch()
    teacher_out = model.run_teacher(batch)
    group = model.teacher_query_group(teacher_out.queries)
    images = student.preprocess_image(batch)
    with torch.no_grad():
        with_group = student.run(images, groups={"teacher_queries": group}, return_attention=True)
        alone = student.run(images, return_attention=True)
    own, ref = with_group.decoder, alone.decoder
    for name in ("pred_logits", "pred_boxes", "hidden_states", "enc_logits", "enc_boxes"):
        torch.testing.assert_close(getattr(own, name), getattr(ref, name), atol=1e-5, rtol=0)
    for a, b in zip(own.self_attn, ref.self_attn):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    # the group really ran: its own outputs, one per teacher query, in every layer
    assert alone.groups == {} and list(with_group.groups) == ["teacher_queries"]
    group_out = with_group.groups["teacher_queries"]
    num_teacher = teacher_out.decoder.pred_logits.shape[2]
    assert num_teacher != own.pred_logits.shape[2]
    assert group_out.pred_logits.shape[:3] == (2, 2, num_teacher)
    assert group_out.self_attn[0].shape[-1] == num_teacher
    assert torch.isfinite(group_out.pred_boxes).all()


def test_cross_variant_pair_trains(tmp_path):
    """A Conditional DETR teacher distils into a single-stage Deformable DETR student."""
    cfg = tiny_distill_config(MAIN_CONFIG, tmp_path)
    teacher = model_zoo.get_config("shapes/conditional_detr_tiny.py").model
    shrink(teacher, hidden=48, dec_layers=3, queries=8)
    cfg.model.teacher = teacher
    cfg.model.student.update(as_two_stage=False, with_box_refine=False)
    del cfg.model.losses["feature"]  # different feature strides: not comparable
    del cfg.model.loss_weights["feature"]
    torch.manual_seed(0)
    model = instantiate(cfg.model)
    train_steps(model, 2)
    assert model.layer_pairs == [(0, 1), (1, 2)]


@pytest.mark.slow
@pytest.mark.parametrize("name", SHAPES_DISTILL_CONFIGS)
def test_each_packaged_distillation_config_trains_two_iterations(tmp_path, name):
    cfg = tiny_distill_config(name, tmp_path, max_iter=2)
    trainer = do_train(cfg)
    assert trainer.iter == 2  # detectron2 leaves iter at max_iter after the loop
    history = trainer.storage.history("total_loss").values()
    assert len(history) == 2 and all(torch.isfinite(torch.tensor(v)) for v, _ in history)
    keys = trainer.storage.histories().keys()
    for loss_name in cfg.model.losses:
        assert any(k.startswith(f"loss_distill_{loss_name}_") for k in keys), loss_name
    assert os.path.isfile(tmp_path / "out" / "model_final.pth")


@pytest.mark.slow
def test_resume_distillation_run_and_export_student(tmp_path):
    cfg = tiny_distill_config(MAIN_CONFIG, tmp_path, max_iter=2)
    do_train(cfg)
    saved = torch.load(tmp_path / "out" / "model_final.pth", weights_only=True)
    assert saved["iteration"] == 1 and saved["trainer"]["optimizer"]["state"]
    cfg.train.max_iter = 3
    trainer = do_train(cfg, resume=True)
    assert trainer.start_iter == 2 and trainer.iter == 3

    # export the student and evaluate it with the student's own config, without the teacher
    exported = str(tmp_path / "student.pth")
    count = export_student(str(tmp_path / "out" / "model_final.pth"), exported)
    student_cfg = model_zoo.get_config("shapes/deformable_detr_tiny.py")
    student_cfg.model = cfg.model.student
    student_cfg.dataloader = cfg.dataloader
    student_cfg.train.init_checkpoint = exported
    results = do_eval_only(student_cfg)
    assert "AP" in results["bbox"]
    assert count == len(instantiate(cfg.model.student).state_dict())


def test_teacher_checkpoint_errors_name_the_problem(tmp_path):
    cfg = tiny_distill_config(MAIN_CONFIG, tmp_path)
    cfg.model.allow_random_teacher = False
    with pytest.raises(ValueError, match="model.teacher_weights is empty"):
        instantiate(cfg.model)
    cfg.model.teacher_weights = str(tmp_path / "missing.pth")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        instantiate(cfg.model)
    # a checkpoint of another architecture: keys named in the error
    other = instantiate(cfg.model.student)
    torch.save({"model": other.state_dict()}, tmp_path / "other.pth")
    cfg.model.teacher_weights = str(tmp_path / "other.pth")
    with pytest.raises(ValueError, match="does not fit the teacher.*shape mismatches"):
        instantiate(cfg.model)
    (tmp_path / "broken.pth").write_bytes(b"not a checkpoint")
    cfg.model.teacher_weights = str(tmp_path / "broken.pth")
    with pytest.raises(RuntimeError, match="could not read teacher checkpoint"):
        instantiate(cfg.model)
    # a real teacher checkpoint loads strictly and is used
    torch.manual_seed(3)
    teacher = instantiate(cfg.model.teacher)
    torch.save({"model": teacher.state_dict(), "iteration": 5}, tmp_path / "teacher.pth")
    cfg.model.teacher_weights = str(tmp_path / "teacher.pth")
    model = instantiate(cfg.model)
    for key, value in teacher.state_dict().items():
        assert torch.equal(model.teacher.state_dict()[key], value)


def test_export_rejects_a_plain_checkpoint(tmp_path):
    torch.save({"model": {"backbone.w": torch.zeros(1)}}, tmp_path / "plain.pth")
    with pytest.raises(ValueError, match="student"):
        export_student(str(tmp_path / "plain.pth"), str(tmp_path / "x.pth"))
    result = subprocess.run(
        [sys.executable, "-m", "detrdistill.distill.export", str(tmp_path / "nope.pth"), "x"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "does not exist" in result.stderr


@pytest.mark.slow
def test_two_process_cpu_launch_of_a_distillation_config(tmp_path):
    root = tmp_path / "data"
    opts = [
        f"train.output_dir={tmp_path / 'out'}",
        "train.max_iter=2",
        "train.eval_period=0",
        "train.checkpointer.period=1",
        "model.teacher_weights=",
        "model.allow_random_teacher=True",
        "dataloader.train.total_batch_size=2",
        "dataloader.train.num_workers=0",
        "dataloader.test.num_workers=0",
        "dataloader.train.dataset.name=launch_train",
        "dataloader.train.dataset.num_images=4",
        f"dataloader.train.dataset.root={root}",
        "dataloader.test.dataset.name=launch_val",
        "dataloader.test.dataset.num_images=2",
        f"dataloader.test.dataset.root={root}",
        "model.losses.feature.top_k=10",
        *tiny_pair_overrides(),
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, "train_net.py", "--config-file", MAIN_CONFIG, "--num-gpus", "2", *opts],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.isfile(tmp_path / "out" / "model_final.pth")
    assert "loss_distill_feature_feature" in (tmp_path / "out" / "metrics.json").read_text()
