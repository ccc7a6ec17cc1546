"""Group forecasts: feeders, substations and portfolios built from their meters' forecasts.

``membership`` (which groups a meter belongs to: the ``meter-groups`` topic and its CSV file),
``expected`` (a forecast's expected value, the centre that adds up), ``calibration`` (the band
of a group total, learnt online from realised totals), ``group_state`` (one group's
per-origin sums in the stream) and ``contributions`` (the records that carry a meter's
forecasts and readings to its groups' owners).
"""
