"""Notebook 01: loading weights safely, deterministic predictions, verifying the model files."""

from tests.notebook_variants import right, wrong

VARIANTS = {
    "ex1-load-safely": [
        right(
            "suffix read from str(path), map_location as a torch.device",
            """
def load_weights_safely(path):
    import safetensors.torch
    if str(path).endswith(".safetensors"):
        return safetensors.torch.load_file(str(path))
    return torch.load(str(path), map_location=torch.device("cpu"), weights_only=True)
""",
        ),
        wrong(
            "weights_only=False: the malicious pickle runs its code",
            """
def load_weights_safely(path):
    path = Path(path)
    if path.suffix == ".safetensors":
        return load_file(path)
    return torch.load(path, weights_only=False, map_location="cpu")
""",
        ),
        right(
            "safetensors' safe_open tensor by tensor",
            """
def load_weights_safely(path):
    from safetensors import safe_open
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        return torch.load(path, map_location="cpu", weights_only=True)
    with safe_open(str(path), framework="pt", device="cpu") as f:
        return {name: f.get_tensor(name) for name in f.keys()}
""",
        ),
        wrong(
            "swallows the UnpicklingError and returns an empty dict",
            """
def load_weights_safely(path):
    path = Path(path)
    if path.suffix == ".safetensors":
        return load_file(path)
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except pickle.UnpicklingError:
        return {}
""",
        ),
    ],
    "ex2-predict": [
        wrong(
            "never switches to eval mode: dropout makes two calls differ",
            """
def predict_positive(model, tokenizer, texts):
    batch = encode(tokenizer, texts)
    with torch.inference_mode():
        logits = model(torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"]))
    return torch.softmax(logits, dim=-1)[:, 1].numpy()
""",
        ),
        right(
            "model.train(False), torch.no_grad(), F.softmax over dim=1, mode restored without try/finally",
            """
def predict_positive(model, tokenizer, texts):
    import torch.nn.functional as F
    mode = model.training
    model.train(False)
    enc = encode(tokenizer, list(texts))
    ids, mask = torch.as_tensor(enc["input_ids"]), torch.as_tensor(enc["attention_mask"])
    with torch.no_grad():
        probs = F.softmax(model(ids, mask), dim=1)
    model.train(mode)
    return probs[:, 1].detach().cpu().numpy()
""",
        ),
        wrong(
            "keeps column 0: P(negative)",
            """
def predict_positive(model, tokenizer, texts):
    model.eval()
    batch = encode(tokenizer, texts)
    with torch.inference_mode():
        logits = model(torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"]))
    return torch.softmax(logits, dim=-1)[:, 0].numpy()
""",
        ),
        right(
            "softmax in NumPy on the logits, under inference_mode, the mode restored in a finally",
            """
def predict_positive(model, tokenizer, texts):
    training = model.training
    try:
        model.eval()
        batch = encode(tokenizer, texts)
        with torch.inference_mode():
            logits = model(torch.tensor(batch["input_ids"]), torch.tensor(batch["attention_mask"])).numpy()
    finally:
        if training:
            model.train()
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True))[:, 1]
""",
        ),
        wrong(
            "the library's predict_proba: right values, but the caller's train mode is left switched off",
            """
def predict_positive(model, tokenizer, texts):
    return predict_proba(model, tokenizer, texts)[:, 1]
""",
        ),
        right(
            "the library's predict_proba, with the caller's mode saved and restored around it",
            """
def predict_positive(model, tokenizer, texts):
    was_training = model.training
    try:
        return predict_proba(model, tokenizer, list(texts))[:, 1]
    finally:
        model.train(was_training)
""",
        ),
        wrong(
            "switches gradients off globally (torch.set_grad_enabled(False)) instead of a context manager",
            """
def predict_positive(model, tokenizer, texts):
    model.eval()
    torch.set_grad_enabled(False)
    batch = encode(tokenizer, texts)
    logits = model(torch.from_numpy(batch["input_ids"]), torch.from_numpy(batch["attention_mask"]))
    return torch.softmax(logits, dim=-1)[:, 1].numpy()
""",
        ),
    ],
    "ex3-verify": [
        right(
            "hashlib.file_digest and FileNotFoundError",
            """
def verify_files(model_dir, card):
    result = {}
    for name, expected in card["files"].items():
        try:
            with open(Path(model_dir) / name, "rb") as f:
                result[name] = hashlib.file_digest(f, "sha256").hexdigest() == expected
        except FileNotFoundError:
            result[name] = False
    return result
""",
        ),
        wrong(
            "opens every listed file: a missing file raises instead of giving False",
            """
def verify_files(model_dir, card):
    result = {}
    for name, expected in card["files"].items():
        digest = hashlib.sha256()
        with (Path(model_dir) / name).open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        result[name] = digest.hexdigest() == expected
    return result
""",
        ),
        right(
            "a helper with 64 KiB chunks and os.path, a dict comprehension",
            """
def verify_files(model_dir, card):
    import os

    def sha256_of(path):
        h = hashlib.sha256()
        with open(path, "rb") as stream:
            while block := stream.read(65536):
                h.update(block)
        return h.hexdigest()

    paths = {name: os.path.join(model_dir, name) for name in card["files"]}
    return {name: os.path.isfile(p) and sha256_of(p) == card["files"][name] for name, p in paths.items()}
""",
        ),
        wrong(
            "leaves missing files out of the result instead of marking them False",
            """
def verify_files(model_dir, card):
    result = {}
    for name, expected in card["files"].items():
        path = Path(model_dir) / name
        if path.is_file():
            result[name] = hashlib.sha256(path.read_bytes()).hexdigest() == expected
    return result
""",
        ),
    ],
}
