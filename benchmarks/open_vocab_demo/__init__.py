"""The parts of ``benchmarks/open_vocab.py``: a small generated world where forgetting can be seen.

* :mod:`world`: the visual world (coloured shapes), its words, captions, frames and videos.
* :mod:`datasets`: the training and test videos of one seed.
* :mod:`pretrain`: a tiny open_clip CLIP trained contrastively on the world's captioned images.
* :mod:`finetune`: base-class fine-tuning through ``froster``'s students and distiller.
* :mod:`report`: tables, summaries and the plot, drawn from the results file.
"""
