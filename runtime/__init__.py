"""srcgrad's runtime: array backends, primitives, the rule table, and the eager Tensor engine.

Installed as `srcgrad.runtime`. It never imports the compiler (`srcgrad`): the dependency runs one way.
"""
