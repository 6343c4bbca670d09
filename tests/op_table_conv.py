"""Op-table entries for convolutions, pools and resizing (``lucid.nn.functional_conv``,
``functional_pool``, ``functional_upsample``): stride/padding/dilation/groups
combinations, 'same'/'valid', prime sizes, batch 1, transposed-layout and unbatched inputs."""
from op_table import F, In, T, op

# ------------------------------------------------------------------ convolutions
op("conv2d", lambda lib, x, w, b: F(lib).conv2d(x, w, b),
   [[In((2, 3, 5, 6)), In((4, 3, 3, 3)), In((4,))], [In((1, 1, 3, 3)), In((1, 1, 3, 3)), In((1,))]])
op("conv2d_stride_pad_dilation", lambda lib, x, w, b: F(lib).conv2d(x, w, b, stride=(2, 1), padding=(1, 2),
                                                                    dilation=(2, 1)),
   [[In((1, 2, 7, 5)), In((3, 2, 2, 3)), In((3,))], [T(2, 2, 5, 7), In((1, 2, 3, 2)), In((1,))]])
op("conv2d_groups", lambda lib, x, w: F(lib).conv2d(x, w, stride=2, groups=2),
   [[In((2, 4, 5, 5)), In((6, 2, 3, 2))], [In((1, 4, 3, 7)), In((2, 2, 1, 1))]])
op("conv2d_depthwise", lambda lib, x, w, b: F(lib).conv2d(x, w, b, padding=1, groups=3),
   [[In((1, 3, 5, 4)), In((3, 1, 3, 3)), In((3,))]])
op("conv2d_same", lambda lib, x, w: F(lib).conv2d(x, w, padding="same", dilation=(1, 2)),
   [[In((1, 2, 5, 7)), In((2, 2, 4, 3))], [In((2, 1, 3, 3)), In((3, 1, 2, 2))]])
op("conv2d_valid", lambda lib, x, w: F(lib).conv2d(x, w, padding="valid"),
   [[In((2, 2, 4, 5)), In((3, 2, 4, 2))], [In((1, 3, 5, 4)), T(2, 3, 2, 3)]])
op("conv2d_unbatched", lambda lib, x, w, b: F(lib).conv2d(x, w, b, padding=1),
   [[In((3, 5, 5)), In((2, 3, 2, 2)), In((2,))], [T(2, 3, 4), In((1, 2, 3, 3)), In((1,))]])
op("conv2d_batch0", lambda lib, x, w: F(lib).conv2d(x, w), [[In((0, 2, 4, 4)), In((3, 2, 3, 3))]])
op("conv1d", lambda lib, x, w, b: F(lib).conv1d(x, w, b, stride=2, padding=1),
   [[In((2, 3, 11)), In((5, 3, 3)), In((5,))], [In((3, 7)), In((2, 3, 1)), In((2,))],
    [T(3, 2, 7), In((4, 2, 7)), In((4,))]])
op("conv1d_dilation_groups_same", lambda lib, x, w: F(lib).conv1d(x, w, padding="same", dilation=3, groups=3),
   [[In((2, 3, 13)), In((6, 1, 3))], [In((1, 6, 5)), In((3, 2, 4))]])
op("conv3d", lambda lib, x, w, b: F(lib).conv3d(x, w, b, padding=(1, 0, 1), stride=(1, 2, 1)),
   [[In((1, 2, 3, 4, 5)), In((2, 2, 2, 2, 2)), In((2,))]])
op("conv_transpose2d", lambda lib, x, w, b: F(lib).conv_transpose2d(x, w, b, stride=(2, 1), padding=(1, 0),
                                                                    output_padding=(1, 0)),
   [[In((2, 4, 3, 5)), In((4, 3, 3, 2)), In((3,))], [T(1, 4, 2, 3), In((4, 1, 2, 2)), In((1,))]])
op("conv_transpose2d_groups_dilation", lambda lib, x, w: F(lib).conv_transpose2d(
    x, w, stride=3, output_padding=2, groups=2, dilation=2), [[In((1, 4, 3, 3)), In((4, 2, 2, 3))]])
op("conv_transpose2d_crop", lambda lib, x, w: F(lib).conv_transpose2d(x, w, stride=2, padding=2),
   [[In((1, 2, 4, 4)), In((2, 3, 2, 2))], [In((2, 3, 3)), In((2, 1, 3, 3))]])
op("conv_transpose1d", lambda lib, x, w, b: F(lib).conv_transpose1d(x, w, b, stride=3, padding=2),
   [[In((2, 3, 7)), In((3, 2, 4)), In((2,))], [In((3, 5)), In((3, 5, 2)), In((5,))],
    [T(2, 3, 5), T(3, 2, 3), In((2,))]])
op("unfold", lambda lib, x: F(lib).unfold(x, (3, 2), dilation=(1, 2), padding=1, stride=(2, 1)),
   [[In((2, 3, 7, 6))], [In((2, 5, 5))], [T(1, 2, 4, 5)]])
op("fold", lambda lib, c: F(lib).fold(c, (5, 6), 2, padding=1, stride=(2, 1)),
   [[In((2, 12, 21))], [In((8, 21))]])

# ------------------------------------------------------------------ pools
op("max_pool2d", lambda lib, x: F(lib).max_pool2d(x, 2),
   [[In((2, 3, 4, 6), "distinct")], [In((1, 1, 5, 7), "distinct")], [T(2, 3, 5, 4, kind="distinct")]])
op("max_pool2d_pad_stride_ceil", lambda lib, x: F(lib).max_pool2d(x, 3, stride=2, padding=1, ceil_mode=True),
   [[In((2, 2, 7, 6), "distinct")], [In((3, 5, 5), "distinct")]])
op("max_pool2d_dilation_indices", lambda lib, x: F(lib).max_pool2d(
    x, (3, 2), stride=(2, 1), padding=(1, 0), dilation=(2, 1), return_indices=True),
   [[In((2, 3, 7, 5), "distinct")]])
op("max_pool2d_ties", lambda lib, x: F(lib).max_pool2d(x.round(), 3, stride=1, padding=1), [[In((1, 2, 5, 5))]],
   fd=False)
# windows that tile the input (a reshape and a transpose instead of a gather), with ties
op("max_pool2d_tiled_ties_indices", lambda lib, x: F(lib).max_pool2d(x.round(), (2, 3), return_indices=True),
   [[In((2, 3, 4, 6))], [In((3, 6, 9))], [T(1, 2, 6, 3)]], fd=False)
op("max_pool3d_tiled", lambda lib, x: F(lib).max_pool3d(x, 2), [[In((1, 2, 4, 2, 6), "distinct")]])
op("adaptive_max_pool2d_tiled", lambda lib, x: F(lib).adaptive_max_pool2d(x, (2, 3), return_indices=True),
   [[In((2, 3, 4, 6), "distinct")], [In((3, 2, 9), "distinct")]])
op("avg_pool1d_tiled", lambda lib, x: F(lib).avg_pool1d(x, 3), [[In((2, 3, 12))], [T(2, 9, 4)]])
op("max_pool1d", lambda lib, x: F(lib).max_pool1d(x, 3, stride=2, padding=1, dilation=2, return_indices=True),
   [[In((2, 3, 11), "distinct")], [In((3, 7), "distinct")]])
op("avg_pool2d", lambda lib, x: F(lib).avg_pool2d(x, 2), [[In((2, 3, 4, 6))], [T(1, 2, 5, 7)]])
op("avg_pool2d_pad_ceil_exclude", lambda lib, x: F(lib).avg_pool2d(x, 3, stride=2, padding=1, ceil_mode=True,
                                                                   count_include_pad=False),
   [[In((2, 2, 7, 6))], [In((3, 5, 5))]])
op("avg_pool2d_divisor_override", lambda lib, x: F(lib).avg_pool2d(x, (3, 2), padding=(1, 1), divisor_override=5),
   [[In((1, 2, 5, 5))]])
op("avg_pool1d", lambda lib, x: F(lib).avg_pool1d(x, 3, stride=2, padding=1, ceil_mode=True),
   [[In((2, 3, 10))], [In((3, 7))]])
op("adaptive_avg_pool2d", lambda lib, x: F(lib).adaptive_avg_pool2d(x, (3, 4)),
   [[In((2, 3, 5, 7))], [In((3, 8, 4))], [T(1, 2, 6, 5)]])
op("adaptive_avg_pool2d_global", lambda lib, x: F(lib).adaptive_avg_pool2d(x, 1), [[In((2, 3, 5, 7))]])
op("adaptive_avg_pool2d_none", lambda lib, x: F(lib).adaptive_avg_pool2d(x, (None, 2)), [[In((2, 3, 5, 7))]])
op("adaptive_avg_pool1d", lambda lib, x: F(lib).adaptive_avg_pool1d(x, 4), [[In((2, 3, 11))], [In((3, 2))]])
op("adaptive_max_pool2d", lambda lib, x: F(lib).adaptive_max_pool2d(x, (3, 2), return_indices=True),
   [[In((2, 3, 5, 7), "distinct")], [In((3, 7, 4), "distinct")]])
op("adaptive_max_pool1d", lambda lib, x: F(lib).adaptive_max_pool1d(x, 3), [[In((2, 3, 7), "distinct")]])

# ------------------------------------------------------------------ resizing
op("interpolate_nearest", lambda lib, x: F(lib).interpolate(x, scale_factor=2),
   [[In((2, 3, 4, 5))], [In((1, 2, 7))]])
op("interpolate_nearest_size", lambda lib, x: F(lib).interpolate(x, size=(7, 3)), [[In((2, 3, 5, 4))]])
op("interpolate_nearest_exact", lambda lib, x: F(lib).interpolate(x, size=(11, 3), mode="nearest-exact"),
   [[In((1, 2, 5, 4))]])
op("interpolate_bilinear", lambda lib, x: F(lib).interpolate(x, scale_factor=(1.5, 2.5), mode="bilinear"),
   [[In((2, 3, 4, 5))], [T(1, 2, 3, 5)]])
op("interpolate_bilinear_align_corners", lambda lib, x: F(lib).interpolate(x, size=(7, 3), mode="bilinear",
                                                                           align_corners=True),
   [[In((2, 3, 4, 5))]])
op("interpolate_linear", lambda lib, x: F(lib).interpolate(x, size=9, mode="linear"), [[In((2, 3, 5))]])
op("interpolate_area", lambda lib, x: F(lib).interpolate(x, size=(3, 2), mode="area"), [[In((2, 3, 7, 5))]])
op("pixel_shuffle", lambda lib, x: F(lib).pixel_shuffle(x, 2), [[In((2, 8, 3, 5))], [In((4, 2, 3))]])
op("pixel_unshuffle", lambda lib, x: F(lib).pixel_unshuffle(x, 2), [[In((2, 2, 4, 6))], [T(1, 6, 4)]])
op("interpolate_bicubic", lambda lib, x: F(lib).interpolate(x, scale_factor=(1.5, 0.7), mode="bicubic"),
   [[In((2, 3, 4, 7))]])
op("interpolate_bicubic_align_corners", lambda lib, x: F(lib).interpolate(x, size=(6, 3), mode="bicubic",
                                                                          align_corners=True),
   [[In((1, 2, 4, 5))]])
op("max_unpool2d", lambda lib, x: F(lib).max_unpool2d(*F(lib).max_pool2d(x, 2, return_indices=True), 2),
   [[In((2, 3, 4, 6), "distinct")], [In((3, 4, 6), "distinct")]])
op("max_unpool2d_output_size", lambda lib, x: F(lib).max_unpool2d(
    *F(lib).max_pool2d(x, 3, stride=2, padding=1, return_indices=True), 3, 2, 1, output_size=(7, 6)),
   [[In((1, 2, 7, 6), "distinct")]])
op("max_unpool1d", lambda lib, x: F(lib).max_unpool1d(*F(lib).max_pool1d(x, 3, return_indices=True), 3),
   [[In((2, 3, 10), "distinct")]])
