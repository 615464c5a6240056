"""The judge-guided DPO logic (report App. A.2): prompts and parser, ratings, the pair rule, the rules judge."""
