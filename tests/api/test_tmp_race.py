import pytest
from tests.api.test_applications import test_two_operators_deciding_at_once_one_wins as t

@pytest.mark.parametrize("i", range(15))
async def test_race(i, client, pool, api_keys, submitted):
    await t(client, pool, api_keys, submitted)
