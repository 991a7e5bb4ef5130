"""The network colorizers: Zhang et al. ECCV16 (``zhang``) and Larsson et al. 2016 (``larsson``).

Per model: ``<model>_net`` (the torch module and its config), ``<model>`` (the colorizer plugin),
``<model>_import`` (the released-weights converter); ``common`` holds the shared factory options.
"""
