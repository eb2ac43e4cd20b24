"""Train a model: `python train.py [group=option ...] [key=value ...]`; `--help` lists the options."""

from practicum.cli.entry import train

if __name__ == "__main__":
    train()
