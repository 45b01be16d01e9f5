"""Appeals (申诉复核): a department contests a bad review or a figure of a draft
edition, within a window of working days from the edition's first draft, and the
office decides. `store` keeps the appeals and decisions; `window` says when an
edition may be approved. dbt reads them as the reference table `appeals`
(an upheld appeal about a case takes that bad review out, as an upheld 好差评
appeal does), and marts.fct_appeals shows them to the editions.
"""
