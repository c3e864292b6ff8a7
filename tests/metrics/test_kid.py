import pytest
import torch

from i2i.errors import ConfigError, DataError
from i2i.metrics.kid import kernel_inception_distance


def test_hand_computed_mmd():
    # 1-D features, k(x, y) = (x y + 1)^3. X = {0, 1}, Y = {1, 2}:
    # K_XX off-diagonal = 1, K_YY off-diagonal = 27, K_XY = {1, 1, 8, 27}.
    # Unbiased MMD^2 = (2 * 1 + 2 * 27) / (2 * 1) - 2 * (1 + 1 + 8 + 27) / 4 = 28 - 18.5 = 9.5.
    x, y = torch.tensor([[0.0], [1.0]]), torch.tensor([[1.0], [2.0]])
    result = kernel_inception_distance(x, y, subsets=3, subset_size=2)
    assert result["kid"] == pytest.approx(9.5)
    assert result["kid_std"] == pytest.approx(0.0)  # every subset is the whole set


def test_same_distribution_near_zero_and_shift_positive():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(200, 8, generator=gen), torch.randn(200, 8, generator=gen)
    shifted = torch.randn(200, 8, generator=gen) + 1.0
    same = kernel_inception_distance(a, b, subsets=20, subset_size=100)["kid"]
    apart = kernel_inception_distance(a, shifted, subsets=20, subset_size=100)["kid"]
    assert abs(same) < 0.05 * apart
    assert apart > 0.5


def test_subset_size_is_capped_at_the_smaller_set():
    gen = torch.Generator().manual_seed(1)
    result = kernel_inception_distance(torch.randn(5, 4, generator=gen), torch.randn(7, 4, generator=gen))
    assert set(result) == {"kid", "kid_std"}


def test_bad_inputs():
    with pytest.raises(DataError, match="at least 2 images"):
        kernel_inception_distance(torch.zeros(1, 4), torch.zeros(5, 4))
    with pytest.raises(ConfigError, match="subsets"):
        kernel_inception_distance(torch.zeros(5, 4), torch.zeros(5, 4), subsets=0)


def test_identical_sets_give_zero_up_to_the_estimators_known_offset():
    # KID(X, X) over the whole set: (S_off + S_off) / (m (m - 1)) - 2 (S_off + S_diag) / m^2
    # = (2 / m) (mean off-diagonal k - mean diagonal k): slightly negative, vanishing as m grows.
    x = torch.randn(50, 8, generator=torch.Generator().manual_seed(2))
    kernel = (x.double() @ x.double().T / 8 + 1) ** 3
    m = 50
    off_mean = (kernel.sum() - kernel.diag().sum()) / (m * (m - 1))
    expected = float(2 / m * (off_mean - kernel.diag().mean()))
    same = kernel_inception_distance(x, x, subsets=2, subset_size=m)["kid"]
    assert same == pytest.approx(expected, rel=1e-4) and expected < 0
    assert abs(same) < 0.1 * kernel_inception_distance(x, x + 1, subsets=2, subset_size=m)["kid"]
