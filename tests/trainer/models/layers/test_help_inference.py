import torch

from trainer.models.layers.help_inference import HardwareInference


def test_shapes_match_the_modulated_header_and_the_kl_is_a_non_negative_scalar():
    net = HardwareInference(10, [200, 200, 200])
    z, kl = net(torch.rand(10))
    assert [s.shape for s in z.weight_scales] == [torch.Size([200])] * 3
    assert z.bias_shifts.shape == torch.Size([3]) and kl.shape == torch.Size([]) and float(kl.detach()) >= 0
    assert net.size == 603  # HELP's 2 x 100 x 3 weight scales + 3 bias shifts


def test_the_mean_is_deterministic_and_draws_are_not():
    torch.manual_seed(0)
    net = HardwareInference(4, [3, 2])
    h = torch.rand(4)
    mean_a, _ = net(h, sample=False)
    mean_b, _ = net(h, sample=False)
    draw_a, _ = net(h)
    draw_b, _ = net(h)
    assert torch.equal(mean_a.bias_shifts, mean_b.bias_shifts)
    assert not torch.equal(draw_a.bias_shifts, draw_b.bias_shifts)


def test_reset_parameters_changes_the_weights():
    torch.manual_seed(0)
    net = HardwareInference(4, [3])
    before = net.net[0].weight.detach().clone()
    net.reset_parameters()
    assert not torch.equal(before, net.net[0].weight)
