"""Target stores. Each offers the same verbs: connect, provision, write, read, count.

Drivers are imported only inside these modules, so ``import dataferry`` stays light.
"""
