"""`python -m jewelgan.train ARGS` = `jewelgan train ARGS`; the form torchrun needs:

    torchrun --nproc_per_node 2 -m jewelgan.train --data studio.jga --model dcgan --kimg 100
"""

import sys

from jewelgan.cli import app

if __name__ == "__main__":
    app(["train", *sys.argv[1:]], prog_name="jewelgan train")
