"""SAM attention with the relative-position bias folded into queries and keys.

SAM's attention adds a decomposed relative-position bias to its logits. For a query at grid
cell ``(qi, qj)`` and a key at ``(ki, kj)``::

    logit = scale * q.k + q.Rh[qi, ki] + q.Rw[qj, kj]

transformers' ``DeepseekOcr2SamVisionSdpaAttention`` materialises that bias as a dense
``[views, heads, L, L]`` ``attn_mask`` (L = H * W: 384 MiB per 1024 px view in bf16), and a
dense mask also rules out the fused (flash / memory-efficient) SDPA kernels. The bias is a sum
of two terms that each depend on the query and on one key coordinate, so it folds exactly into
wider queries and keys. With ``rel_h[q, ki] = q.Rh[qi, ki]`` (``[.., L, H]``) and
``rel_w[q, kj] = q.Rw[qj, kj]`` (``[.., L, W]``)::

    q' = [q, rel_h / scale, rel_w / scale]
    k' = [k, onehot(ki),    onehot(kj)]
    scale * q'.k' = scale * q.k + rel_h[q, ki] + rel_w[q, kj]

so ``scaled_dot_product_attention(q', k', v, scale=scale)`` with no mask gives the same output.
The extra memory is ``O(L * (H + W))`` instead of ``O(L^2)``. The price is width: q'.k' is
``d + H + W`` wide (64 -> 192 for a 1024 px view attended globally), and v is padded to match
where the kernel needs equal head dims, so the attention kernel does up to 3x the FLOPs. On a
CPU, where SDPA is compute-bound, a folded 64x64 global layer is about 2x slower than the
masked one (``benchmarks/sam_attention.py``); windowed layers cost about the same.
``fold_sam_attention`` switches the SAM attention modules of a loaded model to this forward in
place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers.models.deepseek_ocr2.modeling_deepseek_ocr2 import (
    DeepseekOcr2SamVisionAttention,
)

__all__ = [
    "FoldedSamAttention",
    "fold_sam_attention",
    "folded_head_dim",
    "is_folded",
    "pads_value",
]

#: Fused SDPA kernels want head dims in multiples of 8 (CUDA tensor-core alignment for half
#: precision; the memory-efficient kernel rejects anything else on sm80+).
_HEAD_DIM_ALIGN = 8
#: Largest head dim CUDA's flash kernel takes (``check_head_dim_size_flash``: q, k and v equal
#: and <= 256).
_FLASH_MAX_HEAD_DIM = 256


def folded_head_dim(head_dim: int, grid: tuple[int, int], use_rel_pos: bool = True) -> int:
    """Head dim of the folded queries and keys: ``head_dim + H + W`` rounded up to 8.

    Args:
        head_dim: Per-head width of the unfolded queries and keys.
        grid: ``(H, W)`` of the attended grid (one window, or the whole view).
        use_rel_pos: Without relative positions nothing is folded in.
    """
    width = head_dim + (grid[0] + grid[1] if use_rel_pos else 0)
    return -(-width // _HEAD_DIM_ALIGN) * _HEAD_DIM_ALIGN


def pads_value(device_type: str, head_dim: int, width: int) -> bool:
    """Whether the folded forward zero-pads v to the folded q/k width before SDPA.

    What torch's SDPA backends accept when the value head dim differs from q/k's (torch 2.13;
    checked on CPU, read from ``sdp_utils.cpp`` for CUDA):

    * CPU: the fused kernel (``FLASH_ATTENTION``, ``sdp_utils_cpp.cpp``) requires q, k and v to
      share the last dim; otherwise SDPA falls back to the math kernel, which materialises the
      ``L x L`` weights, the very tensor the fold removes. So CPU always pads.
    * CUDA flash: q, k, v equal and <= 256. Memory-efficient: q == k, and q and v each a
      multiple of 8 (half precision, sm80+), so it takes an unpadded v. cuDNN (first on sm90
      with recent cuDNN): d_qk, d_v <= 128 (256 with new cuDNN frontends), multiples of 8.

    Padding v makes every backend eligible at the cost of a wider ``P @ V``; above 256 only the
    memory-efficient kernel is left on CUDA, and it does not need the padding.

    Args:
        device_type: ``"cpu"``, ``"cuda"``, ...
        head_dim: Head dim of v (that of the unfolded q, k, v).
        width: Head dim of the folded queries and keys.
    """
    if head_dim == width:
        return False
    return device_type != "cuda" or width <= _FLASH_MAX_HEAD_DIM


class FoldedSamAttention(DeepseekOcr2SamVisionAttention):
    """SAM attention whose relative-position bias is folded into queries and keys.

    Same parameters and call as ``DeepseekOcr2SamVisionSdpaAttention``; SDPA runs with no mask,
    so no ``L x L`` tensor is built and fused kernels stay eligible. Attention weights are not
    returned (``None``), as with the SDPA class.
    """

    def forward(  # type: ignore[override]
        self, hidden_states: torch.Tensor, output_attentions: bool | None = False
    ) -> tuple[torch.Tensor, None]:
        """Attend over ``hidden_states`` ``[B, H, W, C]`` (B views or windows).

        Args:
            hidden_states: Tokens on their ``H x W`` grid.
            output_attentions: Accepted for signature compatibility; weights are never made.
        """
        batch, height, width, _ = hidden_states.shape
        heads = self.num_attention_heads
        length = height * width
        # [B, L, 3, heads, d] -> three [B, heads, L, d] views.
        qkv = self.qkv(hidden_states).reshape(batch, length, 3, heads, -1).permute(2, 0, 1, 3, 4)
        query, key, value = (t.transpose(1, 2) for t in qkv.unbind(0))
        head_dim = query.shape[-1]
        target = folded_head_dim(head_dim, (height, width), self.use_rel_pos)

        if self.use_rel_pos or target != head_dim:
            query, key = self._fold(query, key, height, width, target)
        pad_v = pads_value(value.device.type, head_dim, target)
        if pad_v:
            value = F.pad(value, (0, target - head_dim))

        out = F.scaled_dot_product_attention(
            query,
            key,
            value,
            dropout_p=self.dropout if self.training else 0.0,
            scale=self.scale,
        )
        if pad_v:
            out = out[..., :head_dim]
        out = out.transpose(1, 2).reshape(batch, height, width, -1)
        return self.proj(out), None

    def _fold(
        self, query: torch.Tensor, key: torch.Tensor, height: int, width: int, target: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Append the relative-position terms to ``query`` and the one-hots to ``key``.

        Args:
            query: ``[B, heads, L, d]`` queries.
            key: ``[B, heads, L, d]`` keys.
            height: Grid rows ``H``.
            width: Grid columns ``W``.
            target: Folded head dim (``d + H + W`` rounded up to a multiple of 8).
        """
        batch, heads, length, head_dim = query.shape
        q_parts = [query]
        k_parts = [key]
        if self.use_rel_pos:
            # The class's own get_rel_pos, so tables trained for another grid (64 for 1024 px,
            # used on 48x48 tiles of 768 px) are interpolated exactly as the reference does.
            # [H, Hk, d] and [W, Wk, d]
            rel_pos_h = self.get_rel_pos(height, height, self.rel_pos_h).to(query.dtype)
            rel_pos_w = self.get_rel_pos(width, width, self.rel_pos_w).to(query.dtype)
            grid_q = query.reshape(batch, heads, height, width, head_dim)
            # Dividing by scale undoes the scale SDPA applies to the whole q'.k' product.
            rel_h = torch.einsum("bnhwc,hkc->bnhwk", grid_q, rel_pos_h) / self.scale
            rel_w = torch.einsum("bnhwc,wkc->bnhwk", grid_q, rel_pos_w) / self.scale
            q_parts += [rel_h.reshape(batch, heads, length, -1)]
            q_parts += [rel_w.reshape(batch, heads, length, -1)]
            # Key index ki*W + kj gets a one at row ki and at column H + kj: shared by all
            # views and heads, so it is built once and broadcast.
            rows = torch.arange(height, device=key.device).repeat_interleave(width)
            cols = torch.arange(width, device=key.device).repeat(height)
            onehot = torch.zeros(length, height + width, dtype=key.dtype, device=key.device)
            onehot[torch.arange(length, device=key.device), rows] = 1
            onehot[torch.arange(length, device=key.device), height + cols] = 1
            k_parts += [onehot.expand(batch, heads, length, height + width)]
        pad = target - head_dim - (height + width if self.use_rel_pos else 0)
        if pad:
            # Zero columns change no dot product; they only align the head dim for the kernels.
            q_parts += [query.new_zeros(batch, heads, length, pad)]
            k_parts += [key.new_zeros(batch, heads, length, pad)]
        return torch.cat(q_parts, dim=-1), torch.cat(k_parts, dim=-1)


def fold_sam_attention(module: nn.Module) -> int:
    """Switch every SAM attention inside ``module`` to :class:`FoldedSamAttention` in place.

    Eager and SDPA instances both switch (the eager one stops returning attention weights);
    parameters and buffers stay as they are. Idempotent.

    Args:
        module: Any module tree (a SAM encoder, a DeepEncoder, a whole OCR model).

    Returns:
        How many modules were switched (0 on a second call).
    """
    count = 0
    for sub in module.modules():
        if isinstance(sub, DeepseekOcr2SamVisionAttention) and not isinstance(
            sub, FoldedSamAttention
        ):
            sub.__class__ = FoldedSamAttention
            count += 1
    return count


def is_folded(module: nn.Module) -> bool:
    """Whether every SAM attention inside ``module`` runs folded (True when it has none).

    Args:
        module: Any module tree.
    """
    return all(
        isinstance(sub, FoldedSamAttention)
        for sub in module.modules()
        if isinstance(sub, DeepseekOcr2SamVisionAttention)
    )
