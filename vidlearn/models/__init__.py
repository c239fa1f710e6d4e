"""Plain `nn.Module` video and image classifiers and their weight loading (no Lightning here).

Video models map `(B, T, C, H, W) -> (B, num_outputs)`, image models `(B, C, H, W) ->
(B, num_outputs)`; each takes `num_outputs` first and is configured by one `conf/model/*.yaml`.
"""
