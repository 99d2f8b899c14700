//! `Engine::adopt_fleet`: at start, the drivers are brought in line with the store.

use rollscale_core::domain::HealthStatus;
use rollscale_fleet::{Fault, Fleet, LoadBalancer};
use rollscale_test_support::engine::Harness;

#[tokio::test]
async fn a_start_makes_missing_instances_again_starts_stopped_ones_and_registers_every_backend() {
    let h = Harness::new(0).await;
    let group = h.group(4).await;
    let instances = h.instances(&group).await;
    let lb = &group.load_balancer_ids[0];
    let (gone, stopped, dropped, untouched) = (&instances[0], &instances[1], &instances[2], &instances[3]);

    // Behind rollscale's back: a container removed, one stopped, a registration forgotten (as
    // by a load balancer that restarted), a weight changed.
    h.fleet.remove_instance(&gone.id).await.expect("remove");
    h.service.inject_fault(&stopped.id, Fault::Crash).await.expect("crash");
    h.lb.deregister(lb, &dropped.id).await.expect("deregister");
    h.lb.set_weight(lb, &untouched.id, 7).await.expect("weight");
    assert!(h.fleet.observe(&gone.id).await.expect("observe").is_none());
    assert!(!h.fleet.observe(&stopped.id).await.expect("observe").expect("exists").running);

    let adoption = h.engine.adopt_fleet().await.expect("adopt");
    assert_eq!(adoption.remade, vec![gone.id.clone()]);
    assert_eq!(adoption.started, vec![stopped.id.clone()]);
    assert!(adoption.failed.is_empty(), "{:?}", adoption.failed);
    assert_eq!(adoption.known.len(), 4);

    for instance in &instances {
        let observed = h.fleet.observe(&instance.id).await.expect("observe").expect("the instance exists");
        assert!(observed.running, "{} runs", instance.id);
        assert_eq!(h.lb.weight(lb, &instance.id).await.expect("weight"), Some(100), "{}", instance.id);
        let stored = h.store.instance_get(&instance.id).await.expect("read").expect("stored").value;
        assert_eq!(stored.health_status, HealthStatus::Healthy);
    }

    // Adopting again changes nothing: it is what every start does.
    let again = h.engine.adopt_fleet().await.expect("adopt again");
    assert!(again.remade.is_empty() && again.started.is_empty() && again.failed.is_empty());
}
