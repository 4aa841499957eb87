#!/usr/bin/env python3
"""BM25 baseline runner for the Trellis evaluation protocol (design/EVALUATION.md).

The protocol demands the independent `bm25s` package "as it comes": its Lucene variant, its
default tokenizer (lower-cased `\\b\\w\\w+\\b` tokens) with English stop words, no stemming,
k1 = 1.5, b = 0.75. The Rust crate `trellis-eval` builds the documents and queries, pipes a JSON
job to this script, and judges what comes back; this script only scores and sorts.

stdin (JSON):
    {"k1": 1.5, "b": 0.75,
     "corpora": [{"name": "...", "doc_ids": [int, ...], "doc_texts": [str, ...],
                  "queries": [[query id (str), query text (str)], ...]}, ...]}
stdout (JSON):
    {"<corpus name>": {"<query id>": {"ids": [doc ids, best first], "scores": [float, ...]}}}

Every query ranks every document of its corpus by descending bm25s score; equal scores
(including the many documents that share no term with the query) are ordered by ascending
document id, so the output is deterministic.

Exit status 3 means bm25s (or numpy) cannot be imported: `pip install -r eval/requirements.txt`.
"""

import json
import os
import sys

os.environ.setdefault("DISABLE_TQDM", "1")


def main() -> int:
    try:
        import bm25s
        import numpy as np
    except ImportError as error:
        print(
            f"cannot import bm25s/numpy ({error}); run `pip install -r eval/requirements.txt`",
            file=sys.stderr,
        )
        return 3

    job = json.load(sys.stdin)
    k1 = float(job.get("k1", 1.5))
    b = float(job.get("b", 0.75))
    output = {}
    for corpus in job["corpora"]:
        doc_ids = np.asarray(corpus["doc_ids"], dtype=np.int64)
        results = {}
        if len(doc_ids) == 0:
            for query_id, _ in corpus["queries"]:
                results[query_id] = {"ids": [], "scores": []}
            output[corpus["name"]] = results
            continue
        corpus_tokens = bm25s.tokenize(corpus["doc_texts"], stopwords="en", show_progress=False)
        model = bm25s.BM25(k1=k1, b=b, method="lucene")
        model.index(corpus_tokens, show_progress=False)
        for query_id, query_text in corpus["queries"]:
            query_tokens = bm25s.tokenize(
                [query_text], stopwords="en", return_ids=False, show_progress=False
            )[0]
            # Terms the corpus never uses score nothing; bm25s refuses them, so drop them first.
            query_tokens = [token for token in query_tokens if token in model.vocab_dict]
            if query_tokens:
                scores = np.asarray(model.get_scores(query_tokens), dtype=np.float64)
            else:
                scores = np.zeros(len(doc_ids), dtype=np.float64)
            # lexsort sorts by the last key first: descending score, then ascending id.
            order = np.lexsort((doc_ids, -scores))
            results[query_id] = {
                "ids": doc_ids[order].tolist(),
                "scores": scores[order].tolist(),
            }
        output[corpus["name"]] = results
    json.dump(output, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
