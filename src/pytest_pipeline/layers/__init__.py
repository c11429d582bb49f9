"""The four test layers (``unit``, ``integration``, ``performance``, ``quality``) as markers."""
