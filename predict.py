"""Predict new inputs with a trained model: `python predict.py ckpt_path=... input=<csv|image|folder>`."""

from practicum.cli.entry import predict

if __name__ == "__main__":
    predict()
