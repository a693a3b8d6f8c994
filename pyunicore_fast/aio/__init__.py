"""asyncio API (``pyunicore.aio``); see :mod:`pyunicore_fast.aio.client`."""
