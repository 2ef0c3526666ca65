"""Versions of the registration workflow's command sequence.

A module of constants with no imports, so that settings can name them cheaply;
``workflows/contracts.py`` re-exports them as part of the contract.
"""

# The version travels in the start argument (``RegistrationInput.flow``), so
# telling flows apart on replay costs nothing in history: ``workflow.patched()``
# would write a marker and a search-attribute upsert into every new registration.
FLOW_HAND_OFF = 1
"""Carrier call as an activity task; search attributes upserted before every
wait; at ACTIVE, continue-as-new into the service workflow. Every history
written before versions were carried (the start argument has no ``flow``)."""
FLOW_SERVICE_IN_RUN = 2
"""Carrier call as a local activity; search attributes upserted once the
registration has settled; at ACTIVE the same run carries on as the service."""
CURRENT_FLOW = FLOW_SERVICE_IN_RUN
