"""Configuration as code: import and export providers, keys, mappings, virtual keys, routing.

An installed app (``gateway_config`` and ``demo_setup`` commands, the demo fixture), so this
package imports no models: Django imports it before the models are ready. ``config_import``
(``importer``) and ``config_export`` (``exporter``) are the service and selector; the file
format is in ``schema`` and ``fileformat``, errors in ``errors``, the import report in
``report``. The ``gateway_config`` management command and the admin REST API are thin callers.
"""
