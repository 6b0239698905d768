"""Reads event files written by distflow.summary with TensorFlow's own reader.

Run by hand, in two steps (TensorFlow is never a distflow dependency):

    python -c "import distflow as tf, numpy as np
    w = tf.summary.create_file_writer('/tmp/tbcheck')
    with w.as_default(step=2):
        tf.summary.scalar('loss', 0.25); tf.summary.histogram('w', np.arange(10.0))
        tf.summary.text('note', 'hello'); tf.summary.image('img', np.full((2, 4, 3, 3), 0.5))
    w.close()"
    /tmp/tfenv/bin/python tools/check_summaries_tf.py /tmp/tbcheck

It prints every value with `tf.compat.v1.train.summary_iterator` and decodes the
images with `tf.io.decode_png`; a record TF cannot parse raises.
"""

import glob
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402


def main(logdir: str) -> None:
    for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                kind = value.WhichOneof("value")
                detail = value.simple_value if kind == "simple_value" else ""
                if kind == "image":
                    image = tf.io.decode_png(value.image.encoded_image_string)
                    detail = f"{tuple(image.shape)} mean {float(tf.reduce_mean(image)):.1f}"
                if kind == "tensor":
                    detail = value.tensor.string_val
                print(value.tag, event.step, kind, detail)


if __name__ == "__main__":
    main(sys.argv[1])
