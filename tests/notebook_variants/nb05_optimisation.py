"""Notebook 05: memory of the parameters, sparsity of the Linear weights, the distillation loss."""

from tests.notebook_variants import right, wrong

#: 137 of the notebook's 163 s under COURSE_FAST (measured): distillation training, pruning evaluation,
#: latency measurements; then about 20 s more for static INT8 (pre-processing, calibration, measuring) and
#: TorchScript (trace, save, a fresh process that loads it, parity, measuring). The graded cells read only
#: the model, torch and their own inputs.
TRIM = (
    'quant_pre_process(settings.model_dir / "model.onnx", WORK / "model.pre.onnx", auto_merge=True)',
    'quantize_static(WORK / "model.pre.onnx", WORK / "model.int8.static.onnx", '
    "TextCalibrationReader(calibration_texts),",
    'measure("ONNX INT8 static", lambda texts: onnx_logits(sessions["ONNX INT8 static"], tokenizer, texts),',
    "with warnings.catch_warnings(record=True) as caught:",
    'torch.jit.save(traced, WORK / "model.ts.pt")',
    'loaded = torch.jit.load(WORK / "model.ts.pt")',
    'measure("TorchScript (traced)", lambda texts: predict_logits(loaded, tokenizer, texts),',
    "order_rng, losses = random.Random(settings.seed), []",
    'variants = {"pruned 50% unstructured": unstructured, "pruned 30% FFN rows (masked)": masked,',
    'train_set = load_sentiment("train")',
    'fp32_bytes = (settings.model_dir / "model.safetensors").stat().st_size',
    'measure("torch.export", exported_logits, (WORK / "model.pt2").stat().st_size)',
    'measure("torch INT8", lambda texts: predict_logits(model_int8, tokenizer, texts), '
    "state_bytes(model_int8))",
    'breakdown = time_stages({"preprocess": preprocess, "inference": inference, "postprocess": postprocess},',
)

VARIANTS = {
    "ex1-param-memory": [
        right(
            "sum of map(torch.numel, ...) over 1_000_000",
            """
def param_memory_mb(model, bytes_per_param):
    return sum(map(torch.numel, model.parameters())) * bytes_per_param / 1_000_000
""",
        ),
        wrong(
            "counts the state_dict: buffers and a shared layer's second name count too",
            """
def param_memory_mb(model, bytes_per_param):
    n = sum(t.numel() for t in model.state_dict().values())
    return float(n * bytes_per_param / 1e6)
""",
        ),
        right(
            "a loop with nelement(), float() at the end",
            """
def param_memory_mb(model, bytes_per_param):
    count = 0
    for parameter in model.parameters():
        count += parameter.nelement()
    return float(count) * bytes_per_param / 1e6
""",
        ),
        wrong(
            "mebibytes (2**20 bytes) instead of megabytes",
            """
def param_memory_mb(model, bytes_per_param):
    return float(sum(p.numel() for p in model.parameters()) * bytes_per_param / 2**20)
""",
        ),
    ],
    "ex2-sparsity": [
        wrong(
            "the mean of each layer's sparsity, not zeros over all weights together",
            """
def sparsity(module):
    layers = [m.weight for m in module.modules() if isinstance(m, nn.Linear)]
    return float(np.mean([float((w == 0).float().mean()) for w in layers])) if layers else 0.0
""",
        ),
        right(
            "torch.count_nonzero per layer, summed",
            """
def sparsity(module):
    zeros = total = 0
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            total += layer.weight.numel()
            zeros += layer.weight.numel() - int(torch.count_nonzero(layer.weight))
    return float(zeros / total) if total else 0.0
""",
        ),
        wrong(
            "reads weight_orig after pruning: the mask is ignored",
            """
def sparsity(module):
    weights = [getattr(m, "weight_orig", m.weight) for m in module.modules() if isinstance(m, nn.Linear)]
    zeros = sum(int((w == 0).sum()) for w in weights)
    total = sum(w.numel() for w in weights)
    return zeros / total if total else 0.0
""",
        ),
        right(
            "every weight flattened into one tensor, mean of (== 0)",
            """
def sparsity(module):
    flat = [m.weight.detach().reshape(-1) for m in module.modules() if isinstance(m, torch.nn.Linear)]
    if not flat:
        return 0.0
    return (torch.cat(flat) == 0).float().mean().item()
""",
        ),
    ],
    "ex3-distillation-loss": [
        right(
            "KL written out from log-softmaxes, NLL for the hard term",
            """
def distillation_loss(student_logits, teacher_logits, labels, T, alpha):
    log_s = F.log_softmax(student_logits / T, dim=1)
    log_t = F.log_softmax(teacher_logits / T, dim=1)
    soft = (log_t.exp() * (log_t - log_s)).sum(dim=1).mean() * T * T
    hard = F.nll_loss(F.log_softmax(student_logits, dim=1), labels)
    return alpha * soft + (1 - alpha) * hard
""",
        ),
        wrong(
            "forgets the T**2 factor on the soft term",
            """
def distillation_loss(student_logits, teacher_logits, labels, T, alpha):
    log_p_student = F.log_softmax(student_logits / T, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits / T, dim=-1)
    soft = F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean")
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)
""",
        ),
        right(
            "kl_div with the teacher's probabilities as target (log_target=False)",
            """
def distillation_loss(student_logits, teacher_logits, labels, T, alpha):
    teacher_probs = torch.softmax(teacher_logits / T, dim=-1)
    soft = F.kl_div(F.log_softmax(student_logits / T, dim=-1), teacher_probs, reduction="batchmean")
    return alpha * (T**2) * soft + (1.0 - alpha) * F.cross_entropy(student_logits, labels)
""",
        ),
        wrong(
            "log(softmax(...)): the log of an underflowed probability is -inf, the loss NaN",
            """
def distillation_loss(student_logits, teacher_logits, labels, T, alpha):
    log_p_student = torch.log(torch.softmax(student_logits / T, dim=-1))
    log_p_teacher = torch.log(torch.softmax(teacher_logits / T, dim=-1))
    soft = F.kl_div(log_p_student, log_p_teacher, log_target=True, reduction="batchmean") * T**2
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)
""",
        ),
        wrong(
            "KL the wrong way round: KL(student || teacher)",
            """
def distillation_loss(student_logits, teacher_logits, labels, T, alpha):
    log_p_student = F.log_softmax(student_logits / T, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits / T, dim=-1)
    soft = F.kl_div(log_p_teacher, log_p_student, log_target=True, reduction="batchmean") * T**2
    return alpha * soft + (1 - alpha) * F.cross_entropy(student_logits, labels)
""",
        ),
    ],
}
