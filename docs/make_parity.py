"""Write docs/parity.md: the eager API's PyTorch names, read from srcgrad itself.

    python docs/make_parity.py           # rewrite docs/parity.md (make docs runs this)
    python docs/make_parity.py --check   # exit 1 if docs/parity.md is not what srcgrad has now

Everything on the srcgrad side is derived: the torch-named functions from `runtime.mapping.TORCH_FUNCTIONS`
and `srcgrad.eager.__all__`, the Tensor's methods from `dir(srcgrad.Tensor)` and
`runtime.mapping.TENSOR_METHODS` / `TENSOR_OVERRIDES`, and the sub-namespaces (`linalg`, `nn`,
`nn.functional`, `optim`, `autograd`, `autograd.functional`, `cuda`) from their public attributes.
`COMMON` below is the only hand-written part: PyTorch names often used in tutorials, listed so that the
page also says which of them srcgrad lacks.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path
from typing import Any

import numpy as np

import srcgrad
from srcgrad import eager
from srcgrad.runtime import mapping

OUT = Path(__file__).resolve().parent / "parity.md"

# PyTorch names (torch.*, Tensor.*, ...) that tutorials use often; what srcgrad lacks of them is listed.
COMMON: dict[str, list[str]] = {
    "torch": """abs add addmm all allclose amax amin any arange argmax argmin argsort as_tensor atan2 baddbmm
        bernoulli bmm broadcast_to cat cdist chunk clamp clip clone cos cosh count_nonzero cross cummax
        cumprod cumsum deg2rad det diag diag_embed diagonal diff dist div dot einsum empty empty_like eq
        equal erf erfinv exp expm1 eye flatten flip floor fmod from_numpy full full_like gather ge gt
        histc index_select inverse isclose isfinite isinf isnan kron kthvalue le lerp linspace log log10
        log1p log2 log_softmax logaddexp logcumsumexp logdet logical_and logical_not logical_or logspace
        logsumexp lt manual_seed masked_fill masked_select matmul max maximum mean median meshgrid min
        minimum mm mode moveaxis movedim mul multinomial mv nan_to_num nanmean nansum ne neg no_grad
        nonzero norm normal numel ones ones_like outer permute polar pow prod quantile rand rand_like
        randint randn randn_like randperm reciprocal relu remainder repeat_interleave reshape roll rot90
        round rsqrt scatter scatter_add searchsorted sigmoid sign sin sinh softmax sort split sqrt square
        squeeze stack std sub sum svd t take tan tanh tensor tensordot tile topk trace transpose trapz
        tril triu true_divide trunc unbind unique unsqueeze var vander view_as_real vstack hstack where
        zeros zeros_like""".split(),
    "Tensor": """abs add add_ addmm all any argmax argmin backward bmm clamp clamp_ clone contiguous copy_ cos
        cpu cuda cumsum data detach detach_ device diag dim div div_ dot double dtype eq exp expand
        expand_as fill_ flatten flip float floor gather ge grad grad_fn gt index_add_ index_fill_
        index_select int is_contiguous is_cuda is_leaf item le log log_softmax long lt masked_fill
        masked_fill_ matmul max mean min mm mul mul_ narrow ndim ne neg new_ones new_tensor new_zeros norm
        numel numpy permute pow prod register_hook relu repeat requires_grad requires_grad_ reshape
        retain_grad round scatter scatter_ select shape sigmoid sign sin size softmax sort split sqrt
        squeeze std sub sub_ sum t tanh to tolist topk transpose type type_as unbind unfold uniform_
        unsqueeze var view view_as where zero_""".split(),
    "linalg": "cholesky det eig eigh eigvalsh inv lstsq matmul matrix_norm norm qr slogdet solve svd "
              "vector_norm".split(),
    "nn": """BatchNorm1d BCELoss BCEWithLogitsLoss Conv1d Conv2d CrossEntropyLoss Dropout Embedding Flatten
        GELU GRU Identity LSTM LayerNorm LeakyReLU Linear MSELoss MaxPool2d Module ModuleList NLLLoss
        Parameter ReLU Sequential Sigmoid Softmax Tanh""".split(),
    "nn.functional": """binary_cross_entropy cross_entropy conv2d dropout gelu layer_norm leaky_relu linear
        log_softmax mse_loss nll_loss one_hot pad relu sigmoid silu softmax softplus tanh""".split(),
    "optim": "Adagrad Adam AdamW LBFGS Optimizer RMSprop SGD lr_scheduler".split(),
    "autograd": "Function backward functional grad gradcheck profiler".split(),
    "autograd.functional": "hessian hvp jacobian jvp vhp vjp".split(),
}


def public(obj: Any) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def served_by(adapter: Any) -> str:
    """How srcgrad computes a name: the primitive or the adapter function of the mapping."""
    mod = getattr(adapter, "__module__", "") or ""
    name = getattr(adapter, "__name__", type(adapter).__name__)
    if mod.endswith("primitives"):
        return f"primitive `{name}`"
    return f"`{name}`"


def functions_defined_in(module: Any) -> set[str]:
    """Public callables of a module that the module itself defines (not what it imported)."""
    return {n for n, v in vars(module).items() if not n.startswith("_") and callable(v)
            and getattr(v, "__module__", None) == module.__name__}


def namespaces() -> dict[str, dict[str, str]]:
    """namespace -> {PyTorch name -> note} for every name srcgrad has there."""
    torch_fns = {n: served_by(a) for n, a in mapping.TORCH_FUNCTIONS.items() if "." not in n}
    top: dict[str, str] = {}
    for n in eager.__all__:
        if n in ("autograd", "nn", "optim", "linalg"):
            continue
        if n in torch_fns:
            top[n] = torch_fns[n]
        elif n.endswith("_") and n[:-1] in torch_fns:
            top[n] = f"in place: `Tensor.{n}`"
        elif isinstance(getattr(srcgrad, n), srcgrad.dtype):
            top[n] = "dtype"
        else:
            top[n] = ""
    tensor: dict[str, str] = {}
    for n in sorted(public(srcgrad.Tensor)):
        if n in mapping.TENSOR_OVERRIDES and hasattr(np.ndarray, n):
            note = f"PyTorch's meaning (not `ndarray.{n}`'s): {served_by(mapping.TENSOR_OVERRIDES[n])}"
        elif n in mapping.TENSOR_METHODS:
            note = served_by(mapping.TENSOR_METHODS[n])
        elif n in mapping.ATTRIBUTES:
            note = "attribute"
        elif n.endswith("_") and n[:-1] in mapping.TENSOR_METHODS:
            note = "in place"
        else:
            attr = inspect.getattr_static(srcgrad.Tensor, n)
            note = "attribute" if isinstance(attr, property) or not callable(attr) else ""
        tensor[n] = note
    sub = {
        "linalg": {n: served_by(a) for n, a in mapping.TORCH_FUNCTIONS.items()
                   if n.startswith("linalg.")},
        "nn": {n: "" for n in public(srcgrad.nn) if n not in ("functional", "init", "utils")},
        "nn.functional": {n: "" for n in functions_defined_in(srcgrad.nn.functional)
                          | public(srcgrad.nn.functional) - {"annotations"}
                          if callable(getattr(srcgrad.nn.functional, n))},
        "optim": {n: "" for n in public(srcgrad.optim)},
        "autograd": {n: "" for n in public(srcgrad.autograd)},
        "autograd.functional": {n: "generated code (tape when it cannot compile)"
                                for n in functions_defined_in(srcgrad.autograd.functional)
                                if n in COMMON["autograd.functional"]},
        "cuda": {n: "" for n in public(srcgrad.cuda)},
    }
    sub["linalg"] = {n.removeprefix("linalg."): v for n, v in sub["linalg"].items()}
    return {"torch": top, "Tensor": tensor, **sub}


def table(prefix: str, have: dict[str, str], common: list[str]) -> list[str]:
    rows = ["| PyTorch | srcgrad | how |", "|---|:-:|---|"]
    for n in sorted(set(have) | set(common), key=lambda s: (s.lower(), s)):
        mark = "yes" if n in have else "—"
        rows.append(f"| `{prefix}{n}` | {mark} | {have.get(n, '')} |")
    return rows


PREFIX = {"torch": "torch.", "Tensor": "Tensor.", "cuda": "torch.cuda."}


def render() -> str:
    ns = namespaces()
    out = [
        "# PyTorch parity table",
        "",
        "<!-- generated by docs/make_parity.py from srcgrad's own tables: do not edit by hand -->",
        "",
        "Which of PyTorch's names `import srcgrad as torch` provides. The srcgrad column is read from",
        "srcgrad itself (`runtime/mapping.py`'s `TORCH_FUNCTIONS`, `TENSOR_METHODS` and `TENSOR_OVERRIDES`,",
        "`dir(srcgrad.Tensor)` and the sub-namespaces) by `docs/make_parity.py`, which `make docs` runs and",
        "the test suite checks; PyTorch names that srcgrad lacks are listed from a hand-kept list of names",
        "that tutorials use often, marked —. *how* names the primitive or the adapter of",
        "`runtime/mapping.py` that serves a name; \"PyTorch's meaning\" marks Tensor methods whose NumPy",
        "namesake means something else (the compiler uses NumPy's meaning on arrays, PyTorch's on Tensors).",
        "",
        "| namespace | srcgrad has | of the common names, missing |",
        "|---|--:|---|",
    ]
    for key, have in ns.items():
        missing = [n for n in COMMON.get(key, []) if n not in have]
        shown = ", ".join(f"`{n}`" for n in missing) if missing else "none"
        label = PREFIX.get(key, f"torch.{key}.")
        out.append(f"| `{label.rstrip('.')}` | {len(have)} | {shown} |")
    for key, have in ns.items():
        label = PREFIX.get(key, f"torch.{key}.")
        out += ["", f"## `{label.rstrip('.')}`", ""] + table(label, have, COMMON.get(key, []))
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if docs/parity.md is out of date")
    a = ap.parse_args(argv)
    text = render()
    if a.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is out of date: run python docs/make_parity.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
