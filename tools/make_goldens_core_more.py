"""Writes tests/goldens/core/more.json from real TensorFlow: tf.image, tf.strings, tf.sparse,
tf.signal and the other top-level APIs beyond tools/make_goldens_core.py's tables.

Same conventions and runner as tools/make_goldens_core.py (run it the same way):

    /tmp/tfenv/bin/python tools/make_goldens_core_more.py

`cases` are op calls (forward values, dtypes and gradients, or TF's error);
`src` are Python expressions evaluated with `tf` bound to the library, whose
value (a nest of arrays; string arrays as UTF-8 text) is the golden.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
from make_goldens_core import OUT, A, C, D, I, P, R, S, nest_encode, run, tf  # noqa: E402

rng = np.random.RandomState(20261)


# TF 2.21's CPU build has no kernel for Conv2DBackprop{Input,Filter}V2; its v1 ops compute
# the same gradients from the input's (filter's) shape, so the goldens come from those.
def _backprop_input_v2(input, filter, out_backprop, strides, padding, dilations=(1, 1, 1, 1)):
    return tf.compat.v1.nn.conv2d_backprop_input(tf.shape(input), filter, out_backprop, strides,
                                                 padding, dilations=list(dilations))


def _backprop_filter_v2(input, filter, out_backprop, strides, padding, dilations=(1, 1, 1, 1)):
    return tf.compat.v1.nn.conv2d_backprop_filter(input, tf.shape(filter), out_backprop,
                                                  strides, padding, dilations=list(dilations))


tf.conv2d_backprop_input_v2 = _backprop_input_v2
tf.conv2d_backprop_filter_v2 = _backprop_filter_v2


def IMG(*shape):
    return A(rng.uniform(0.0, 1.0, shape))


# (sampled candidates, true expected counts, sampled expected counts) for the sampled losses
SAMPLED = [A([7, 1, 4, 0], "int64"), A([[0.5], [0.25]]), A([0.3, 0.9, 0.6, 0.8])]

U8 = A(rng.randint(0, 256, (2, 3, 4, 3)), "uint8")

CASES = {
    # ------------------------------------------------------------ tf.image
    "image_flip_left_right": C("image.flip_left_right", IMG(2, 3, 4, 2)),
    "image_flip_up_down": C("image.flip_up_down", IMG(3, 4, 2)),
    "image_transpose": C("image.transpose", IMG(2, 3, 4, 1)),
    "image_rot90": C("image.rot90", IMG(3, 4, 2)),
    "image_rot90_k3": C("image.rot90", IMG(2, 3, 4, 1), k=3),
    "image_rot90_k2": C("image.rot90", IMG(3, 4, 1), 2),
    "image_crop": C("image.crop_to_bounding_box", IMG(2, 5, 6, 1), 1, 2, 3, 3),
    "image_crop_bad": C("image.crop_to_bounding_box", IMG(5, 6, 1), 3, 2, 3, 3),
    "image_pad": C("image.pad_to_bounding_box", IMG(3, 2, 2), 1, 2, 5, 6),
    "image_crop_or_pad": C("image.resize_with_crop_or_pad", IMG(2, 5, 3, 1), 3, 6),
    "image_central_crop": C("image.central_crop", IMG(2, 7, 6, 1), 0.5),
    "image_central_crop_odd": C("image.central_crop", IMG(5, 5, 3), 0.33),
    "image_resize_up": C("image.resize", IMG(2, 3, 4, 2), [5, 7]),
    "image_resize_down": C("image.resize", IMG(6, 8, 1), [4, 3]),
    "image_resize_uint8": C("image.resize", U8, [4, 6]),
    "image_resize_nearest": C("image.resize", IMG(2, 3, 5, 1), [5, 3], method="nearest"),
    "image_resize_nearest_u8": C("image.resize", U8, [5, 2], method="nearest"),
    "image_resize_aspect": C("image.resize", IMG(4, 8, 1), [6, 6], preserve_aspect_ratio=True),
    "image_rgb_to_grayscale": C("image.rgb_to_grayscale", IMG(2, 3, 2, 3)),
    "image_rgb_to_grayscale_u8": C("image.rgb_to_grayscale", U8),
    "image_grayscale_to_rgb": C("image.grayscale_to_rgb", IMG(3, 2, 1)),
    "image_adjust_brightness": C("image.adjust_brightness", IMG(2, 3, 2, 3), 0.25),
    "image_adjust_brightness_u8": C("image.adjust_brightness", U8, 0.1),
    "image_adjust_contrast": C("image.adjust_contrast", IMG(2, 3, 4, 3), 1.7, grad=False),
    "image_adjust_gamma": C("image.adjust_gamma", IMG(3, 4, 2), 2.2, 0.9),
    "image_standardization": C("image.per_image_standardization", IMG(2, 3, 4, 3)),
    "image_standardization_u8": C("image.per_image_standardization", U8),
    "image_standardization_flat": C("image.per_image_standardization", A(np.ones((2, 2, 1)))),
    "image_convert_u8_f32": C("image.convert_image_dtype", U8, "float32"),
    "image_convert_f32_u8": C("image.convert_image_dtype", IMG(2, 3, 3), "uint8"),
    "image_convert_u8_i32": C("image.convert_image_dtype", U8, "int32"),
    "image_total_variation": C("image.total_variation", IMG(2, 3, 4, 2)),
    "image_gradients": C("image.image_gradients", IMG(2, 3, 4, 2)),
    "image_psnr": C("image.psnr", IMG(2, 4, 4, 3), IMG(2, 4, 4, 3), 1.0),
    "image_extract_patches": C("image.extract_patches", IMG(2, 5, 6, 2), [1, 2, 3, 1],
                               [1, 2, 2, 1], [1, 1, 1, 1], "VALID"),
    "image_extract_patches_same": C("image.extract_patches", IMG(1, 4, 5, 1), [1, 3, 2, 1],
                                    [1, 2, 1, 1], [1, 1, 2, 1], "SAME"),
    # ------------------------------------------------------------ convolutions, patches
    "conv_2d": C("conv", R(2, 5, 6, 3), R(3, 2, 3, 4), [1, 2, 1, 1], "SAME", grad=False),
    "conv_1d": C("conv", R(2, 7, 3), R(3, 3, 2), [1, 2, 1], "VALID", dilations=[1, 1, 1],
                 grad=False),
    "conv2d_backprop_input_v2": C("conv2d_backprop_input_v2", R(2, 5, 6, 3), R(3, 3, 3, 4),
                                  R(2, 3, 3, 4), [1, 2, 2, 1], "SAME"),
    "conv2d_backprop_input_v2_valid": C("conv2d_backprop_input_v2", R(1, 6, 5, 2),
                                        R(2, 3, 2, 3), R(1, 5, 3, 3), [1, 1, 1, 1], "VALID",
                                        dilations=[1, 1, 1, 1]),
    "conv2d_backprop_filter_v2": C("conv2d_backprop_filter_v2", R(2, 5, 6, 3), R(3, 3, 3, 4),
                                   R(2, 3, 3, 4), [1, 2, 2, 1], "SAME"),
    "conv2d_backprop_filter_v2_dil": C("conv2d_backprop_filter_v2", R(1, 7, 6, 2),
                                       R(2, 2, 2, 2), R(1, 5, 4, 2), [1, 1, 1, 1], "VALID",
                                       dilations=[1, 2, 2, 1]),
    "extract_volume_patches": C("extract_volume_patches", R(1, 3, 4, 5, 2), [1, 2, 2, 3, 1],
                                [1, 1, 2, 2, 1], "VALID"),
    "extract_volume_patches_same": C("extract_volume_patches", R(2, 3, 3, 4, 1),
                                     [1, 2, 2, 2, 1], [1, 2, 1, 2, 1], "SAME"),
    "nn_conv2d_transpose": C("nn.conv2d_transpose", R(2, 3, 3, 4), R(3, 3, 2, 4), [2, 5, 6, 2],
                             2, "SAME"),
    "nn_conv2d_transpose_valid": C("nn.conv2d_transpose", R(1, 3, 2, 3), R(2, 3, 2, 3),
                                   [1, 4, 4, 2], 1, "VALID"),
    "nn_conv1d": C("nn.conv1d", R(2, 7, 3), R(3, 3, 2), 2, "SAME"),
    "nn_conv1d_dilated": C("nn.conv1d", R(1, 8, 2), R(2, 2, 3), 1, "VALID", dilations=2),
    "nn_conv1d_transpose": C("nn.conv1d_transpose", R(2, 4, 3), R(3, 2, 3), [2, 8, 2], 2,
                             "SAME"),
    "nn_convolution_2d": C("nn.convolution", R(2, 5, 5, 2), R(2, 2, 2, 3), padding="SAME"),
    "nn_convolution_1d": C("nn.convolution", R(2, 6, 2), R(3, 2, 3), strides=[2]),
    "nn_conv_transpose": C("nn.conv_transpose", R(1, 3, 3, 2), R(2, 2, 3, 2), [1, 6, 6, 3], 2),
    "nn_atrous_conv2d": C("nn.atrous_conv2d", R(1, 7, 7, 2), R(3, 3, 2, 2), 2, "SAME"),
    "nn_atrous_conv2d_transpose": C("nn.atrous_conv2d_transpose", R(1, 5, 5, 2), R(2, 2, 3, 2),
                                    [1, 5, 5, 3], 2, "SAME"),
    "nn_depthwise_conv2d": C("nn.depthwise_conv2d", R(2, 5, 6, 3), R(3, 3, 3, 2),
                             [1, 1, 1, 1], "SAME"),
    "nn_depthwise_conv2d_strided": C("nn.depthwise_conv2d", R(1, 6, 6, 2), R(2, 2, 2, 1),
                                     [1, 2, 2, 1], "VALID"),
    "nn_separable_conv2d": C("nn.separable_conv2d", R(2, 5, 5, 2), R(3, 3, 2, 2),
                             R(1, 1, 4, 3), [1, 1, 1, 1], "SAME"),
    "nn_depthwise_backprop_input": C("nn.depthwise_conv2d_backprop_input", [2, 5, 6, 3],
                                     R(3, 3, 3, 2), R(2, 5, 6, 6), [1, 1, 1, 1], "SAME"),
    "nn_depthwise_backprop_filter": C("nn.depthwise_conv2d_backprop_filter", R(2, 5, 6, 3),
                                      [3, 3, 3, 2], R(2, 3, 3, 6), [1, 2, 2, 1], "SAME"),
    # ------------------------------------------------------------ more tf.nn
    "nn_relu6": C("nn.relu6", A([-1.0, 0.5, 3.0, 6.5, 7.0])),
    "nn_silu": C("nn.silu", R(3, 4)), "nn_silu_beta": C("nn.silu", R(5), beta=1.7),
    "nn_swish": C("nn.swish", R(2, 3)), "nn_crelu": C("nn.crelu", R(2, 3)),
    "nn_crelu_axis": C("nn.crelu", R(2, 3), axis=0),
    "nn_softsign": C("nn.softsign", R(3, 4)),
    "nn_top_k": C("nn.top_k", D(2, 5), k=3),
    "nn_in_top_k": C("nn.in_top_k", I([0, 3]), D(2, 4), 2),
    "nn_embedding_lookup": C("nn.embedding_lookup", R(5, 3), I([[0, 4], [2, 2]])),
    "nn_embedding_lookup_max_norm": C("nn.embedding_lookup", R(5, 3), I([1, 3]), max_norm=1.0),
    "nn_zero_fraction": C("nn.zero_fraction", A([0.0, 2.0, 0.0, 0.0])),
    "nn_l2_loss": C("nn.l2_loss", R(3, 4)),
    "nn_log_poisson_loss": C("nn.log_poisson_loss", A([0.0, 1.0, 3.0, 7.0]), R(4)),
    "nn_log_poisson_loss_full": C("nn.log_poisson_loss", A([0.0, 1.0, 3.0, 7.0]), R(4),
                                  compute_full_loss=True),
    "nn_weighted_xent": C("nn.weighted_cross_entropy_with_logits",
                          A([[0.0, 1.0, 1.0], [1.0, 0.0, 0.5]]), R(2, 3), 2.5),
    "nn_normalize_moments": C("nn.normalize_moments", A(4.0), R(3), P(3), None),
    "nn_normalize_moments_shift": C("nn.normalize_moments", A(4.0), R(3), P(3), A(0.5)),
    "nn_weighted_moments": C("nn.weighted_moments", R(3, 4), [1], P(3, 4)),
    "nn_weighted_moments_keep": C("nn.weighted_moments", R(3, 4), [0, 1], P(4),
                                  keepdims=True),
    "nn_bn_global": C("nn.batch_norm_with_global_normalization", R(2, 3), R(3), P(3), R(3),
                      P(3), 0.001, True),
    "nn_bn_global_noscale": C("nn.batch_norm_with_global_normalization", R(2, 3), R(3), P(3),
                              R(3), P(3), 0.001, False),
    "nn_depth_to_space": C("nn.depth_to_space", R(2, 2, 3, 8), 2),
    "nn_space_to_depth": C("nn.space_to_depth", R(1, 4, 6, 2), 2),
    "nn_lrn": C("nn.local_response_normalization", R(2, 3, 3, 6)),
    "nn_lrn_args": C("nn.lrn", R(1, 2, 2, 5), depth_radius=1, bias=2.0, alpha=0.5, beta=0.75),
    "nn_max_pool1d": C("nn.max_pool1d", D(2, 7, 3), 3, 2, "SAME"),
    "nn_avg_pool1d": C("nn.avg_pool1d", R(2, 7, 3), [1, 2, 1], [1, 2, 1], "VALID"),
    "nn_pool_max": C("nn.pool", D(2, 6, 6, 2), [2, 3], "MAX", strides=[2, 1], padding="SAME"),
    "nn_pool_avg_1d": C("nn.pool", R(2, 6, 2), [2], "AVG"),
    "nn_conv3d": C("nn.conv3d", R(2, 4, 5, 4, 2), R(2, 3, 2, 2, 3), [1, 1, 2, 1, 1], "SAME"),
    "nn_conv3d_valid": C("nn.conv3d", R(1, 5, 4, 4, 1), R(2, 2, 2, 1, 2), [1, 2, 1, 1, 1],
                         "VALID", dilations=[1, 1, 2, 1, 1]),
    "nn_max_pool3d": C("nn.max_pool3d", D(2, 4, 5, 4, 2), [1, 2, 3, 2, 1], [1, 2, 2, 2, 1],
                       "SAME"),
    "nn_avg_pool3d": C("nn.avg_pool3d", R(1, 4, 5, 3, 2), 2, 2, "SAME"),
    "nn_avg_pool3d_valid": C("nn.avg_pool3d", R(1, 4, 4, 4, 1), [1, 2, 2, 2, 1],
                             [1, 1, 2, 2, 1], "VALID"),
    "nn_dilation2d": C("nn.dilation2d", D(2, 5, 6, 2), R(2, 3, 2), [1, 1, 1, 1], "SAME",
                       "NHWC", [1, 1, 1, 1]),
    "nn_dilation2d_strided": C("nn.dilation2d", D(1, 6, 6, 1), R(2, 2, 1), [1, 2, 2, 1],
                               "VALID", "NHWC", [1, 2, 1, 1]),
    "nn_erosion2d": C("nn.erosion2d", D(1, 5, 5, 2), R(3, 2, 2), [1, 1, 1, 1], "SAME", "NHWC",
                      [1, 1, 1, 1]),
    "nn_max_pool_with_argmax": C("nn.max_pool_with_argmax", D(2, 4, 5, 3), 2, 2, "SAME"),
    "nn_max_pool_with_argmax_batch": C("nn.max_pool_with_argmax", D(2, 4, 4, 2), [1, 3, 2, 1],
                                       [1, 1, 2, 1], "VALID", include_batch_in_index=True),
    "nn_accidental_hits": C("nn.compute_accidental_hits", A([[1, 4], [2, 0]], "int64"),
                            A([4, 2, 7, 1], "int64"), 2),
    "nn_nce_loss": C("nn.nce_loss", R(10, 3), R(10), A([[2], [7]], "int64"), R(2, 3), 4, 10,
                     sampled_values=SAMPLED),
    "nn_nce_loss_hits": C("nn.nce_loss", R(10, 3), R(10), A([[2, 5], [7, 1]], "int64"),
                          R(2, 3), 4, 10, num_true=2, sampled_values=SAMPLED,
                          remove_accidental_hits=True),
    "nn_sampled_softmax": C("nn.sampled_softmax_loss", R(10, 3), R(10), A([[3], [7]], "int64"),
                            R(2, 3), 4, 10, sampled_values=SAMPLED),
    "nn_sampled_softmax_keep": C("nn.sampled_softmax_loss", R(10, 3), R(10),
                                 A([[3], [7]], "int64"), R(2, 3), 4, 10, sampled_values=SAMPLED,
                                 remove_accidental_hits=False),
    "nn_collapse_repeated": C("nn.collapse_repeated", I([[1, 1, 2, 2, 3], [4, 4, 4, 5, 5]]),
                              I([5, 3])),
    "nn_ctc_unique_labels": C("nn.ctc_unique_labels", I([[3, 1, 3, 2], [5, 5, 0, 0]])),
    "nn_isotonic": C("nn.isotonic_regression", A([[1.0, 3.0, 2.0, 4.0, 3.5], [5, 4, 3, 2, 1]])),
    "nn_isotonic_increasing": C("nn.isotonic_regression", A([[1.0, 3.0, 2.0, 4.0, 3.5]]),
                                decreasing=False),
    "nn_isotonic_axis": C("nn.isotonic_regression", R(4, 3), axis=0),
    "linalg_eigh_tridiagonal": C("linalg.eigh_tridiagonal", R(5), R(4), grad=False),
    "linalg_eigh_tridiagonal_v": C("linalg.eigh_tridiagonal", A([1.0, 2.0, 3.0, 4.0]),
                                   A([0.5, 0.25, 1.0]), select="v", select_range=[1.5, 5.0],
                                   grad=False),
    "linalg_eigh_tridiagonal_i": C("linalg.eigh_tridiagonal", A([1.0, 2.0, 3.0, 4.0]),
                                   A([0.5, 0.25, 1.0]), select="i", select_range=[1, 2],
                                   grad=False),
    # ------------------------------------------------------------ tf.signal
    "signal_frame": C("signal.frame", R(2, 10), 4, 3),
    "signal_frame_pad": C("signal.frame", R(10), 4, 3, pad_end=True, pad_value=0.5),
    "signal_frame_axis": C("signal.frame", R(9, 2), 3, 2, axis=0),
    "signal_frame_short": C("signal.frame", R(2, 3), 4, 1),
    "signal_overlap_and_add": C("signal.overlap_and_add", R(2, 3, 4), 2),
    "signal_hann": C("signal.hann_window", 8), "signal_hann_sym": C("signal.hann_window", 7,
                                                                      periodic=False),
    "signal_hann_one": C("signal.hann_window", 1),
    "signal_hamming": C("signal.hamming_window", 6),
    "signal_vorbis": C("signal.vorbis_window", 6),
    "signal_kaiser": C("signal.kaiser_window", 7, beta=5.0),
    "signal_dct2": C("signal.dct", R(3, 8)),
    "signal_dct2_ortho": C("signal.dct", R(2, 5), norm="ortho"),
    "signal_dct1": C("signal.dct", R(2, 6), type=1),
    "signal_dct3": C("signal.dct", R(2, 5), type=3),
    "signal_dct3_ortho": C("signal.dct", R(4), type=3, norm="ortho"),
    "signal_dct4": C("signal.dct", R(2, 6), type=4), "signal_dct4_ortho": C(
        "signal.dct", R(5), type=4, norm="ortho"),
    "signal_dct_n": C("signal.dct", R(2, 6), n=4), "signal_dct_n_pad": C("signal.dct", R(5), n=8),
    "signal_idct": C("signal.idct", R(2, 6)),
    "signal_idct_ortho": C("signal.idct", R(6), norm="ortho"),
    "signal_mel": C("signal.linear_to_mel_weight_matrix", 10, 33, 16000, 80.0, 7600.0),
    "signal_mel_default": C("signal.linear_to_mel_weight_matrix"),
    "signal_mfcc": C("signal.mfccs_from_log_mel_spectrograms", R(3, 2, 10)),
    # ------------------------------------------------------------ tf.strings
    "strings_length": C("strings.length", S([["ab", ""], ["héllo", "x y"]])),
    "strings_length_utf8": C("strings.length", S(["héllo", "ab"]), unit="UTF8_CHAR"),
    "strings_lower": C("strings.lower", S(["HeLLo", "ÀB"])),
    "strings_upper": C("strings.upper", S([["abc", "x1"]])),
    "strings_lower_utf8": C("strings.lower", S(["ÀB"]), encoding="utf-8"),
    "strings_strip": C("strings.strip", S(["  a b \n", "\tc"])),
    "strings_regex_replace": C("strings.regex_replace", S(["a1b22c", "xyz"]), "[0-9]+", "#"),
    "strings_regex_replace_first": C("strings.regex_replace", S(["a1b22c"]), "[0-9]", "<\\0>",
                                     replace_global=False),
    "strings_regex_groups": C("strings.regex_replace", S(["john smith"]), "(\\w+) (\\w+)",
                              "\\2, \\1"),
    "strings_regex_full_match": C("strings.regex_full_match", S(["abc", "ab1", "1"]), "[a-z]+"),
    "strings_substr": C("strings.substr", S(["hello", "world"]), 1, 3),
    "strings_substr_neg": C("strings.substr", S(["hello", "ab"]), -2, 5),
    "strings_substr_vec": C("strings.substr", S(["hello", "world"]), I([0, 2]), I([2, 1])),
    "strings_substr_bad": C("strings.substr", S(["ab"]), 5, 1),
    "strings_to_number": C("strings.to_number", S(["1.5", "-2", "3e2"])),
    "strings_to_number_int": C("strings.to_number", S([["7", "-12"]]), out_type="int32"),
    "strings_to_number_bad": C("strings.to_number", S(["1.5x"])),
    "strings_as_string_float": C("strings.as_string", A([1.5, -0.25, 100.0])),
    "strings_as_string_prec": C("strings.as_string", A([1.23456, 2.0]), precision=2),
    "strings_as_string_sci": C("strings.as_string", A([1234.5]), scientific=True),
    "strings_as_string_short": C("strings.as_string", A([0.1, 1e-7]), shortest=True),
    "strings_as_string_int": C("strings.as_string", I([[3, -40]]), width=4, fill="0"),
    "strings_as_string_bool": C("strings.as_string", A([True, False], "bool")),
    "as_string": C("as_string", I([5, 6]), width=3),
    "strings_join": C("strings.join", [S(["a", "b"]), S(["c", "d"])], separator="-"),
    "strings_join_broadcast": C("strings.join", [S(["a", "b"]), S("z")]),
    "strings_reduce_join": C("strings.reduce_join", S([["a", "b"], ["c", "d"]])),
    "strings_reduce_join_axis": C("strings.reduce_join", S([["a", "b"], ["c", "d"]]), axis=1,
                                  separator=","),
    "strings_reduce_join_keep": C("strings.reduce_join", S([["a", "b"], ["c", "d"]]), axis=0,
                                  keepdims=True),
    "strings_segment_join": C("strings.unsorted_segment_join", S(["a", "b", "c", "d"]),
                              I([1, 0, 1, 3]), 4, separator="+"),
    "strings_hash_bucket_fast": C("strings.to_hash_bucket_fast", S(["hello", "", "tensor"]), 10),
}

SP = "tf.sparse.SparseTensor(indices=[[0, 1], [1, 0], [2, 3]], values=[1.5, -2.0, 3.0], " \
     "dense_shape=[3, 4])"
SP2 = "tf.sparse.SparseTensor(indices=[[0, 1], [2, 2]], values=[0.5, 4.0], dense_shape=[3, 4])"
SP3 = "tf.sparse.SparseTensor(indices=[[0, 0, 1], [1, 1, 0]], values=[7, 8], " \
      "dense_shape=[2, 2, 3])"


def parts(expr):
    """The three tensors of a SparseTensor expression."""
    return f"(lambda s: (s.indices, s.values, s.dense_shape))({expr})"


def rparts(expr):
    """The values and row splits of a RaggedTensor expression."""
    return f"(lambda r: (r.values, r.row_splits))({expr})"


EMB = "tf.reshape(tf.range(12.0), [4, 3])"
IDS = "tf.sparse.SparseTensor([[0, 0], [0, 1], [2, 0]], tf.constant([1, 3, 2], tf.int64), " \
      "[4, 2])"
WTS = "tf.sparse.SparseTensor([[0, 0], [0, 1], [2, 0]], [2.0, 0.5, 1.5], [4, 2])"
IDS_NEG = "tf.sparse.SparseTensor([[0, 0], [0, 1], [2, 0]], tf.constant([1, -1, 2], tf.int64), " \
          "[4, 2])"

WAVE = "[[0.5, -1.0], [1.0, 0.25], [100.7 / 32768, -100.5 / 32768], [0.3, 2.0], " \
       "[-0.00001, 0.99999]]"

KV = "tf.lookup.KeyValueTensorInitializer(tf.constant(['a', 'b', 'c']), " \
     "tf.constant([7, 8, 9], tf.int64))"
TABLE = f"tf.lookup.StaticHashTable({KV}, default_value=tf.constant(-1, tf.int64))"

SRC = {
    # ------------------------------------------------------------ tf.sparse
    "sparse_to_dense": f"tf.sparse.to_dense({SP})",
    "sparse_to_dense_default": f"tf.sparse.to_dense({SP}, default_value=-1.0)",
    "sparse_from_dense": parts("tf.sparse.from_dense(tf.constant([[0, 3], [4, 0], [0, 0]]))"),
    "sparse_add": parts(f"tf.sparse.add({SP}, {SP2})"),
    "sparse_add_dense": f"tf.sparse.add({SP}, tf.ones([3, 4]))",
    "sparse_add_threshold": parts(f"tf.sparse.add({SP}, {SP2}, threshold=1.0)"),
    "sparse_matmul": f"tf.sparse.sparse_dense_matmul({SP}, tf.reshape(tf.range(8.0), [4, 2]))",
    "sparse_matmul_adjoint": f"tf.sparse.sparse_dense_matmul({SP}, tf.reshape(tf.range(6.0), "
                             "[2, 3]), adjoint_a=True, adjoint_b=True)",
    "sparse_reduce_sum": f"tf.sparse.reduce_sum({SP}, axis=1)",
    "sparse_reduce_sum_keep": f"tf.sparse.reduce_sum({SP}, axis=0, keepdims=True)",
    "sparse_reorder": parts("tf.sparse.reorder(tf.sparse.SparseTensor([[2, 0], [0, 3], [0, 1]], "
                            "[1, 2, 3], [3, 4]))"),
    "sparse_transpose": parts(f"tf.sparse.transpose({SP})"),
    "sparse_transpose_3d": parts(f"tf.sparse.transpose({SP3}, [2, 0, 1])"),
    "sparse_reshape": parts(f"tf.sparse.reshape({SP}, [2, -1])"),
    "sparse_retain": parts(f"tf.sparse.retain({SP}, [True, False, True])"),
    "sparse_concat": parts(f"tf.sparse.concat(1, [{SP}, {SP2}])"),
    "sparse_concat_rows": parts(f"tf.sparse.concat(0, [{SP}, {SP2}])"),
    "sparse_expand_dims": parts(f"tf.sparse.expand_dims({SP}, 1)"),
    "sparse_eye": parts("tf.sparse.eye(2, 3)"),
    "sparse_shape": f"list({SP}.shape)",
    # ------------------------------------------------------------ tf.sets, tf.edit_distance
    "sets_size": "tf.sets.size(tf.sparse.from_dense(tf.constant([[1, 2, 2, 3], [4, 4, 4, 4]])))",
    "sets_size_sparse": f"tf.sets.size({SP3})",
    "sets_intersection": parts("tf.sets.intersection(tf.constant([[1, 2, 3], [4, 5, 6]]), "
                               "tf.constant([[3, 2, 9], [9, 9, 9]]))"),
    "sets_union": parts("tf.sets.union(tf.constant([[3, 1], [4, 4]]), "
                        "tf.constant([[2, 1], [5, 4]]))"),
    "sets_difference": parts("tf.sets.difference(tf.constant([[1, 2, 3], [4, 5, 6]]), "
                             "tf.constant([[3, 2, 9], [4, 5, 6]]))"),
    "sets_difference_ba": parts("tf.sets.difference(tf.constant([[1, 2, 3]]), "
                                "tf.constant([[3, 7, 8]]), aminusb=False)"),
    "sets_sparse_dense": parts(f"tf.sets.union({SP3}, tf.constant([[[1, 2], [0, 0]], "
                               "[[0, 5], [7, 7]]]))"),
    "edit_distance": "tf.edit_distance(tf.sparse.from_dense(tf.constant([[1, 2, 3], [4, 0, 0]])),"
                     " tf.sparse.from_dense(tf.constant([[1, 3, 3, 4], [4, 5, 0, 0]])))",
    "edit_distance_raw": "tf.edit_distance(tf.sparse.from_dense(tf.constant([[1, 2, 3]])), "
                         "tf.sparse.from_dense(tf.constant([[2, 3, 4]])), normalize=False)",
    "edit_distance_empty": "tf.edit_distance(tf.sparse.SparseTensor([[0, 0], [1, 0]], [1, 2], "
                           "[3, 2]), tf.sparse.SparseTensor([[0, 0]], [1], [3, 2]))",
    # ------------------------------------------------------------ composites, fingerprints
    "indexed_slices_dense": "tf.convert_to_tensor(tf.IndexedSlices(tf.constant([[1.0, 2.0], "
                            "[3.0, 4.0], [5.0, 6.0]]), tf.constant([2, 0, 2]), "
                            "tf.constant([4, 2])))",
    "indexed_slices_op": "tf.reduce_sum(tf.IndexedSlices(tf.constant([[1.0], [3.0]]), "
                         "tf.constant([1, 0]), tf.constant([3, 1])), axis=0)",
    "fingerprint_ints": "tf.fingerprint(tf.constant([[1, 2], [3, 4]]))",
    "fingerprint_floats": "tf.fingerprint(tf.constant([1.5, -2.0]))",
    "fingerprint_strings": "tf.fingerprint(tf.constant(['abc', 'hello', '']))",
    "fingerprint_string_rows": "tf.fingerprint(tf.constant([['ab', 'c'], ['x', 'yz']]))",
    "batch_function": "tf.nondifferentiable_batch_function(1, 4, 100)(lambda x: x * 2.0)"
                      "(tf.constant([1.0, 2.5]))",
    # ------------------------------------------------------------ tf.audio, tf.io codecs
    "wav_encode": f"tf.io.decode_raw(tf.audio.encode_wav(tf.constant({WAVE}), 8000), tf.uint8)",
    "wav_round_trip": f"tf.audio.decode_wav(tf.audio.encode_wav(tf.constant({WAVE}), 16000))",
    "wav_mono_to_stereo": f"tf.audio.decode_wav(tf.audio.encode_wav(tf.constant({WAVE})[:, :1],"
                          " 8000), desired_channels=2, desired_samples=7)",
    "wav_first_channel": f"tf.audio.decode_wav(tf.audio.encode_wav(tf.constant({WAVE}), 8000), "
                         "desired_channels=1, desired_samples=2)",
    "decode_raw_int16": "tf.io.decode_raw(tf.constant(['abcd', 'efgh']), tf.int16)",
    "decode_raw_big_endian": "tf.io.decode_raw(tf.constant([['abcd']]), tf.int32, "
                             "little_endian=False)",
    "decode_raw_fixed": "tf.io.decode_raw(tf.constant(['abcde', 'ab']), tf.uint8, "
                        "fixed_length=4)",
    "encode_base64": "tf.io.encode_base64(tf.constant(['hello?>', '', 'ab']))",
    "encode_base64_pad": "tf.io.encode_base64(tf.constant(['hello?>', 'ab']), pad=True)",
    "png_rgb": "tf.io.decode_png(tf.io.read_file(GOLDENS + '/png/rgb.png'))",
    "png_grey": "tf.io.decode_png(tf.io.read_file(GOLDENS + '/png/grey.png'))",
    "png_grey_alpha": "tf.io.decode_png(tf.io.read_file(GOLDENS + '/png/grey_alpha.png'))",
    "png_rgba": "tf.io.decode_png(tf.io.read_file(GOLDENS + '/png/rgba.png'))",
    "png_rgb16": "tf.io.decode_png(tf.io.read_file(GOLDENS + '/png/rgb16.png'), dtype=tf.uint16)",
    "png_rgb16_to_8": "tf.io.decode_png(tf.io.read_file(GOLDENS + '/png/rgb16.png'))",
    "png_rgb_to_rgba": "tf.io.decode_png(tf.io.read_file(GOLDENS + '/png/rgb.png'), channels=4)",
    "png_grey_to_rgb": "tf.io.decode_png(tf.io.read_file(GOLDENS + '/png/grey.png'), channels=3)",
    "png_rgba_to_rgb": "tf.io.decode_png(tf.io.read_file(GOLDENS + '/png/rgba.png'), channels=3)",
    "png_grey_alpha_to_grey": "tf.io.decode_png(tf.io.read_file(GOLDENS + "
                              "'/png/grey_alpha.png'), channels=1)",
    "png_u8_as_u16": "tf.io.decode_png(tf.io.read_file(GOLDENS + '/png/grey.png'), "
                     "dtype=tf.uint16)",
    "png_round_trip": "tf.io.decode_png(tf.io.encode_png(tf.constant([[[1, 2, 3], [250, 0, 9]]],"
                      " tf.uint8)))",
    "image_decode_float": "tf.io.decode_image(tf.io.read_file(GOLDENS + '/png/grey.png'), "
                          "dtype=tf.float32)",
    "is_jpeg": "[tf.io.is_jpeg(b'\\xff\\xd8\\xff\\xe0'), tf.io.is_jpeg(b'\\x89PNG')]",
    "decode_csv": "tf.io.decode_csv(['1,2.5,a', ',,\"b,c\"'], [[0], [1.0], ['x']])",
    "decode_csv_scalar": "tf.io.decode_csv('3,4', [tf.constant([], tf.int64), [0.0]])",
    "decode_csv_select": "tf.io.decode_csv(['1;2;3', '4;5;6'], [[0], [0]], field_delim=';', "
                         "select_cols=[0, 2])",
    "decode_csv_na": "tf.io.decode_csv(['NA,2', '1.5,NA'], [[0.0], [7]], na_value='NA')",
    "decode_csv_quotes": "tf.io.decode_csv(['\"a\"\"b\",2', ' 5 ,3'], [[''], [0]])",
    "decode_csv_no_quotes": "tf.io.decode_csv(['1.5e2,7', '2,-3'], [[0.0], [0.0]], "
                            "use_quote_delim=False)",
    "decode_csv_2d": "tf.io.decode_csv([['1,2'], ['3,4']], [[0], [tf.constant(0, tf.int64)]])",
    "decode_base64": "tf.io.decode_base64(tf.constant(['aGVsbG8_Pg', 'YWI=', '']))",
    # ------------------------------------------------------------ tf.lookup
    "lookup_static": f"{TABLE}.lookup(tf.constant([['b', 'zz'], ['a', 'c']]))",
    "lookup_static_size": f"{TABLE}.size()",
    "lookup_static_export": f"(lambda e: tf.sort(e[1]))({TABLE}.export())",  # any order
    "lookup_int_keys": "tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer("
                       "tf.constant([3, 5], tf.int64), tf.constant(['three', 'five'])), "
                       "'?').lookup(tf.constant([5, 4, 3], tf.int64))",
    "lookup_vocab": f"tf.lookup.StaticVocabularyTable({KV}, 4).lookup(tf.constant(['c', "
                    "'unknown', 'a', 'other', 'xyz']))",
    "lookup_vocab_size": f"tf.lookup.StaticVocabularyTable({KV}, 4).size()",
    "lookup_vocab_ints": "tf.lookup.StaticVocabularyTable(tf.lookup.KeyValueTensorInitializer("
                         "tf.constant([10, 20], tf.int64), tf.constant([0, 1], tf.int64)), 5)"
                         ".lookup(tf.constant([20, 7, 123456], tf.int64))",
    # ------------------------------------------------------------ tf.RaggedTensor, tf.ragged
    "ragged_constant": rparts("tf.ragged.constant([[1, 2, 3], [], [4]])"),
    "ragged_constant_float": rparts("tf.ragged.constant([[1.5], [2.0, 3.0]])"),
    "ragged_constant_3d": "(lambda r: (r.flat_values, r.nested_row_splits))("
                          "tf.ragged.constant([[[1, 2], [3]], [[4, 5, 6]], []]))",
    "ragged_constant_inner": rparts("tf.ragged.constant([[[1, 2], [3, 4]], [[5, 6]]], "
                                    "ragged_rank=1)"),
    "ragged_to_tensor": "tf.ragged.constant([[1, 2, 3], [], [4]]).to_tensor()",
    "ragged_to_tensor_default": "tf.ragged.constant([[1.0], [2.0, 3.0]]).to_tensor(-1.0)",
    "ragged_to_tensor_shape": "tf.ragged.constant([[1, 2, 3], [4]]).to_tensor(shape=[3, 2])",
    "ragged_to_tensor_3d": "tf.ragged.constant([[[1, 2], [3]], [[4, 5, 6]]]).to_tensor(9)",
    "ragged_row_lengths": "tf.ragged.constant([[1, 2, 3], [], [4]]).row_lengths()",
    "ragged_value_rowids": "tf.ragged.constant([[1, 2, 3], [], [4]]).value_rowids()",
    "ragged_nrows": "tf.ragged.constant([[1, 2, 3], [], [4]]).nrows()",
    "ragged_bounding_shape": "tf.ragged.constant([[1, 2, 3], [], [4]]).bounding_shape()",
    "ragged_shape": "list(tf.ragged.constant([[1, 2, 3], [], [4]]).shape.as_list()[:1])",
    "ragged_row": "tf.ragged.constant([[1, 2, 3], [], [4]])[0]",
    "ragged_slice": rparts("tf.ragged.constant([[1, 2, 3], [], [4], [5, 6]])[1:3]"),
    "ragged_from_row_splits": rparts("tf.RaggedTensor.from_row_splits([1, 2, 3, 4], "
                                     "[0, 2, 2, 4])"),
    "ragged_from_value_rowids": rparts("tf.RaggedTensor.from_value_rowids([1, 2, 3], "
                                       "[0, 0, 2], nrows=4)"),
    "ragged_from_row_starts": rparts("tf.RaggedTensor.from_row_starts([1, 2, 3], [0, 1])"),
    "ragged_from_row_limits": rparts("tf.RaggedTensor.from_row_limits([1, 2, 3], [1, 3])"),
    "ragged_from_tensor_lengths": rparts("tf.RaggedTensor.from_tensor([[1, 2, 3], [4, 5, 6]],"
                                         " lengths=[1, 3])"),
    "ragged_from_tensor_padding": rparts("tf.RaggedTensor.from_tensor([[1, 0, 0], [2, 3, 0], "
                                         "[0, 0, 0]], padding=0)"),
    "ragged_range": rparts("tf.ragged.range([0, 3, 5], [2, 3, 9], 2)"),
    "ragged_range_one": rparts("tf.ragged.range([3, 1])"),
    "ragged_boolean_mask": rparts("tf.ragged.boolean_mask([[1, 2, 3], [4, 5, 6]], "
                                  "[[True, False, True], [False, False, False]])"),
    "ragged_map_flat_values": rparts("tf.ragged.map_flat_values(tf.multiply, "
                                     "tf.ragged.constant([[1, 2], [3]]), 10)"),
    "ragged_segment_ids": "tf.ragged.row_splits_to_segment_ids([0, 2, 2, 5])",
    "ragged_row_splits_from_ids": "tf.ragged.segment_ids_to_row_splits([0, 0, 2, 2, 2])",
    "nn_sufficient_statistics": "tf.nn.sufficient_statistics(tf.reshape(tf.range(12.0), "
                                "[3, 4]), [0])[:3]",
    "nn_sufficient_statistics_shift": "tf.nn.sufficient_statistics(tf.reshape(tf.range(12.0), "
                                      "[2, 3, 2]), [0, 2], shift=0.5, keepdims=True)",
    # expected counts of draws with replacement are deterministic (the draws are not)
    "sampler_uniform": "tf.random.uniform_candidate_sampler([[1, 3], [0, 9]], 2, 5, False, "
                       "10)[1:]",
    "sampler_log_uniform": "tf.random.log_uniform_candidate_sampler([[1], [40]], 1, 6, False, "
                           "50)[1:2]",
    "sampler_fixed_unigram": "tf.random.fixed_unigram_candidate_sampler([[2], [4]], 1, 4, "
                             "False, 5, distortion=0.5, num_reserved_ids=1, "
                             "unigrams=[4.0, 1.0, 2.0, 9.0])[1:2]",
    "sampler_all": "tf.random.all_candidate_sampler([[1, 3], [0, 2]], 2, 4, True)",
    "sampler_all_nn": "tf.nn.all_candidate_sampler([[1]], 1, 3, False)",
    "nn_embedding_lookup_sparse": f"tf.nn.embedding_lookup_sparse({EMB}, {IDS}, None)",
    "nn_embedding_lookup_sparse_sum": f"tf.nn.embedding_lookup_sparse({EMB}, {IDS}, {WTS}, "
                                      "combiner='sum')",
    "nn_embedding_lookup_sparse_sqrtn": f"tf.nn.embedding_lookup_sparse({EMB}, {IDS}, {WTS}, "
                                        "combiner='sqrtn')",
    "nn_safe_embedding_lookup_sparse": f"tf.nn.safe_embedding_lookup_sparse({EMB}, {IDS_NEG})",
    "nn_safe_embedding_lookup_default": f"tf.nn.safe_embedding_lookup_sparse({EMB}, {IDS_NEG}, "
                                        f"{WTS}, default_id=2)",
    "strings_split": rparts("tf.strings.split(tf.constant(['a b  c', '', 'd']))"),
    "strings_split_sep": rparts("tf.strings.split(tf.constant(['a,b,,c', 'd']), sep=',')"),
    "strings_split_max": rparts("tf.strings.split(tf.constant(['a,b,c']), sep=',', "
                                "maxsplit=1)"),
    "strings_split_scalar": "tf.strings.split(tf.constant('hello big world'))",
    "strings_bytes_split": rparts("tf.strings.bytes_split(tf.constant(['abc', 'de']))"),
}


# Expressions TF refuses: the golden is the exception class's name.
SRC_ERRORS = {
    "sets_size_dense": "tf.sets.size(tf.constant([[1, 2]]))",
    "sets_float": "tf.sets.union(tf.constant([[1.0]]), tf.constant([[2.0]]))",
    "sparse_to_dense_dense": "tf.sparse.to_dense(tf.constant([1.0]))",
    "lookup_wrong_key_type": f"{TABLE}.lookup(tf.constant([1, 2]))",
    "ragged_bad_splits": "tf.RaggedTensor.from_row_splits([1, 2, 3], [0, 2])",
    "decode_csv_required": "tf.io.decode_csv([',1'], [tf.constant([], tf.int32), [0]])",
    "decode_csv_too_many": "tf.io.decode_csv(['1,2,3'], [[0], [0]])",
    "decode_csv_bad_int": "tf.io.decode_csv(['x,2'], [[0], [0]])",
    "decode_raw_uneven": "tf.io.decode_raw(tf.constant(['abcd', 'ab']), tf.uint8)",
    "decode_wav_garbage": "tf.audio.decode_wav(tf.constant('not a wav file'))",
}


def error_class(src):
    try:
        eval(src)  # noqa: S307  (our own fixed case strings)
    except Exception as e:  # noqa: BLE001  (the class TF raised is the golden)
        return type(e).__name__
    return None


def write_pngs():
    """PNG files written by TF's encoder (libpng, adaptive row filters) for the decoder."""
    os.makedirs(os.path.join(OUT, "png"), exist_ok=True)
    y, x = np.mgrid[0:23, 0:31]
    smooth = (x * 7 + y * 5) % 256
    noisy = (smooth + rng.randint(0, 40, smooth.shape)) % 256
    images = {"rgb": np.stack([smooth, noisy, 255 - smooth], -1).astype(np.uint8),
              "grey": noisy[..., None].astype(np.uint8),
              "grey_alpha": np.stack([smooth, noisy], -1).astype(np.uint8),
              "rgba": np.stack([noisy, smooth, noisy // 2, 255 - noisy], -1).astype(np.uint8),
              "rgb16": (np.stack([smooth, noisy, smooth], -1) * 257 + 3).astype(np.uint16)}
    for name, pixels in images.items():
        with open(os.path.join(OUT, "png", f"{name}.png"), "wb") as f:
            f.write(tf.io.encode_png(pixels).numpy())


def main():
    write_pngs()
    cases = {name: {**case, **run(case)} for name, case in CASES.items()}
    scope = {"tf": tf, "GOLDENS": OUT}
    src = {name: {"src": s, "value": nest_encode(eval(s, scope))}  # noqa: S307
           for name, s in SRC.items()}
    src.update({name: {"src": s, "error": error_class(s)} for name, s in SRC_ERRORS.items()})
    with open(os.path.join(OUT, "more.json"), "w") as f:
        json.dump({"tensorflow": tf.__version__, "cases": cases, "src": src}, f, indent=0)
    errors = sorted(n for n, g in cases.items() if "error" in g)
    print(f"{len(cases)} cases, {len(src)} expressions (errors: {errors})", file=sys.stderr)


if __name__ == "__main__":
    main()
