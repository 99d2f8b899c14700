//! What an instance's containers should look like: names, labels, ports, and the pure rules of
//! container-group updates and of the package file. No I/O here.

use crate::docker::DockerConfig;
use crate::{FleetError, InstanceSpec};
use rollscale_core::domain::{ContainerSpec, GroupType};
use rollscale_core::ids::{InstanceId, ScalingGroupId};
use std::collections::{BTreeMap, HashMap};

/// The suffix of a container made ahead of a swap (see the module docs of `docker`).
pub(crate) const NEXT_SUFFIX: &str = ".next";

/// Where installed package versions are kept inside an instance's main container.
pub(crate) const PACKAGES_FILE: &str = "/etc/rollscale/packages";

/// Label keys under a prefix (`rollscale.instance`, …).
#[derive(Clone, Debug)]
pub(crate) struct Labels {
    prefix: String,
}

impl Labels {
    pub(crate) fn new(prefix: &str) -> Labels {
        Labels { prefix: prefix.to_string() }
    }

    pub(crate) fn key(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    /// `rollscale.instance`: the instance id, on every container of the instance.
    pub(crate) fn instance(&self) -> String {
        self.key("instance")
    }

    /// The name of an instance's main container: `rollscale-<id>`.
    pub(crate) fn primary_name(&self, id: &InstanceId) -> String {
        format!("{}-{id}", self.prefix)
    }

    /// The name of an ECI instance's other container: `rollscale-<id>--<container name>`.
    pub(crate) fn member_name(&self, id: &InstanceId, container: &str) -> String {
        format!("{}-{id}--{}", self.prefix, sanitize_name(container))
    }
}

/// Docker container names allow `[a-zA-Z0-9][a-zA-Z0-9_.-]*`; anything else becomes `_`.
pub(crate) fn sanitize_name(name: &str) -> String {
    let cleaned: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    if cleaned.is_empty() {
        "_".to_string()
    } else {
        cleaned
    }
}

/// The tag of an image made by `create_image`: `[A-Za-z0-9_.-]`, not starting with `.` or `-`,
/// at most 128 characters.
pub(crate) fn sanitize_tag(name: &str) -> String {
    let mut tag: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' { c } else { '-' })
        .collect();
    if tag.is_empty() {
        tag.push_str("image");
    }
    if tag.starts_with('.') || tag.starts_with('-') {
        tag.insert(0, '_');
    }
    tag.truncate(128);
    tag
}

/// One container of an instance, as it should be created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Member {
    /// The Docker container name.
    pub name: String,
    /// Position in the instance (0 is the main container, which owns the network namespace).
    pub index: usize,
    pub image: String,
    /// Overrides the image's command when not empty.
    pub command: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The spec as given, reported back by `observe` (ECS instances made without one: `None`).
    pub spec: Option<ContainerSpec>,
}

/// Everything that makes an instance's containers, derived from its spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub id: InstanceId,
    pub group_id: ScalingGroupId,
    pub group_type: GroupType,
    /// The instance's image id as asked (for ECS, the container's image).
    pub image_id: String,
    /// The container specs as given, reported by `observe`.
    pub specs: Vec<ContainerSpec>,
    pub members: Vec<Member>,
    /// Container ports published on the main container, in order; the first is the address.
    /// Empty: the image's exposed ports are used.
    pub ports: Vec<u16>,
    /// The ID each image reference of the members has now (`sha256:…`), as `prepare` found it;
    /// written on each container (`made-from`), so that a container found running another
    /// image than the one it was made from shows it. Empty when not looked up.
    pub image_ids: HashMap<String, String>,
}

impl Layout {
    /// The layout of a new instance. ECS: one container on `image_id`, with the command, env and
    /// port of `containers[0]` when given. ECI with containers: one container per spec.
    pub(crate) fn of_spec(labels: &Labels, spec: &InstanceSpec) -> Result<Layout, FleetError> {
        if spec.group_type == GroupType::ECI && !spec.containers.is_empty() {
            return Layout::group(
                labels,
                spec.id.clone(),
                spec.group_id.clone(),
                &spec.image_id,
                spec.containers.clone(),
            );
        }
        if spec.image_id.is_empty() {
            return Err(FleetError::Failed(format!("instance {} has no image", spec.id)));
        }
        let first = spec.containers.first();
        let member = Member {
            name: labels.primary_name(&spec.id),
            index: 0,
            image: spec.image_id.clone(),
            command: first.map(|c| c.command.clone()).unwrap_or_default(),
            env: first.map(|c| c.env.clone()).unwrap_or_default(),
            spec: first.cloned(),
        };
        Ok(Layout {
            id: spec.id.clone(),
            group_id: spec.group_id.clone(),
            group_type: spec.group_type,
            image_id: spec.image_id.clone(),
            specs: spec.containers.clone(),
            members: vec![member],
            ports: first.and_then(|c| c.port).into_iter().collect(),
            image_ids: HashMap::new(),
        })
    }

    /// The layout of an ECI container group from its container specs.
    pub(crate) fn group(
        labels: &Labels,
        id: InstanceId,
        group_id: ScalingGroupId,
        image_id: &str,
        specs: Vec<ContainerSpec>,
    ) -> Result<Layout, FleetError> {
        if specs.is_empty() {
            return Err(FleetError::Failed(format!("container group {id} needs at least one container")));
        }
        let mut names: HashMap<String, &str> = HashMap::new();
        let mut members = Vec::with_capacity(specs.len());
        let mut ports = Vec::new();
        for (index, spec) in specs.iter().enumerate() {
            if spec.image.is_empty() {
                return Err(FleetError::Failed(format!("container {:?} of {id} has no image", spec.name)));
            }
            let name = if index == 0 { labels.primary_name(&id) } else { labels.member_name(&id, &spec.name) };
            if let Some(other) = names.insert(name.clone(), &spec.name) {
                return Err(FleetError::Failed(format!(
                    "containers {other:?} and {:?} of {id} have the same name",
                    spec.name
                )));
            }
            if let Some(port) = spec.port {
                if ports.contains(&port) {
                    return Err(FleetError::Failed(format!("port {port} is used twice in container group {id}")));
                }
                ports.push(port);
            }
            members.push(Member {
                name,
                index,
                image: spec.image.clone(),
                command: spec.command.clone(),
                env: spec.env.clone(),
                spec: Some(spec.clone()),
            });
        }
        Ok(Layout {
            id,
            group_id,
            group_type: GroupType::ECI,
            image_id: image_id.to_string(),
            specs,
            members,
            ports,
            image_ids: HashMap::new(),
        })
    }

    /// The labels of a member. Every key is always set (empty when it does not apply), so that
    /// labels inherited from an image made by `create_image` never leak into a new container.
    pub(crate) fn labels_of(&self, labels: &Labels, member: &Member) -> HashMap<String, String> {
        let primary = member.index == 0;
        let spec = member.spec.as_ref().and_then(|spec| serde_json::to_string(spec).ok()).unwrap_or_default();
        let specs = if primary { serde_json::to_string(&self.specs).unwrap_or_default() } else { String::new() };
        let ports = if primary { join_ports(&self.ports) } else { String::new() };
        HashMap::from([
            (labels.instance(), self.id.to_string()),
            (labels.key("group"), self.group_id.to_string()),
            (labels.key("group-type"), self.group_type.to_string()),
            (labels.key("image"), if primary { self.image_id.clone() } else { String::new() }),
            (labels.key("index"), member.index.to_string()),
            (labels.key("spec"), spec),
            (labels.key("containers"), specs),
            (labels.key("ports"), ports),
            (labels.key("made-from"), self.image_ids.get(&member.image).cloned().unwrap_or_default()),
        ])
    }
}

fn join_ports(ports: &[u16]) -> String {
    ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",")
}

/// Reads `rollscale.ports`.
pub(crate) fn parse_ports(text: &str) -> Vec<u16> {
    text.split(',').filter_map(|port| port.trim().parse().ok()).collect()
}

/// What the labels of an existing container say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Recorded {
    pub group_id: Option<ScalingGroupId>,
    pub group_type: Option<GroupType>,
    pub image_id: String,
    pub index: usize,
    pub spec: Option<ContainerSpec>,
    pub specs: Vec<ContainerSpec>,
    pub ports: Vec<u16>,
    /// The ID of the image the container was made from (empty when not recorded).
    pub made_from: String,
}

impl Recorded {
    pub(crate) fn read(labels: &Labels, values: &HashMap<String, String>) -> Recorded {
        let get = |name: &str| values.get(&labels.key(name)).map(String::as_str).unwrap_or_default();
        Recorded {
            group_id: ScalingGroupId::parse(get("group")),
            group_type: get("group-type").parse().ok(),
            image_id: get("image").to_string(),
            index: get("index").parse().unwrap_or(0),
            spec: serde_json::from_str(get("spec")).ok(),
            specs: serde_json::from_str(get("containers")).unwrap_or_default(),
            ports: parse_ports(get("ports")),
            made_from: get("made-from").to_string(),
        }
    }
}

/// The image a container runs, named as rollscale names it: `recorded` (what it was asked to
/// be made from) unless the container shows it runs another image. It does when it runs
/// another image than it was made from (`image_id`, the ID it runs, is not `made_from`, the ID
/// `recorded` had then: it was made again, out of band), or when it was created from another
/// name (`name`, the reference the backend reports). The other image is then named by that
/// name when it is another one, else by its ID.
pub(crate) fn running_image(recorded: &str, made_from: &str, name: &str, image_id: &str) -> String {
    // The backend reports an ID as the name once the name points to another image (Docker).
    let name = if is_image_id(name) && !is_image_id(recorded) { "" } else { name };
    if recorded.is_empty() {
        return if name.is_empty() { image_id.to_string() } else { name.to_string() };
    }
    if !made_from.is_empty() && !image_id.is_empty() {
        if same_image_id(made_from, image_id) {
            return recorded.to_string();
        }
        return match name {
            name if !name.is_empty() && !same_image_name(name, recorded) => name.to_string(),
            _ => image_id.to_string(),
        };
    }
    let same = name.is_empty() || same_image_name(name, recorded) || same_image_id(recorded, image_id);
    if same {
        recorded.to_string()
    } else {
        name.to_string()
    }
}

/// Whether `text` is an image ID (`sha256:<hex>`, or 12 to 64 hex digits), not a name.
fn is_image_id(text: &str) -> bool {
    let hex = text.strip_prefix("sha256:").unwrap_or(text);
    (12..=64).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether two image IDs are one (with or without `sha256:`, or one a 12-digit-or-longer
/// prefix of the other).
fn same_image_id(a: &str, b: &str) -> bool {
    if !is_image_id(a) || !is_image_id(b) {
        return false;
    }
    let (a, b) = (a.strip_prefix("sha256:").unwrap_or(a), b.strip_prefix("sha256:").unwrap_or(b));
    a.starts_with(b) || b.starts_with(a)
}

/// Whether two image references name one image: `localhost/x:v1`, `x:v1`, `docker.io/library/x`
/// and `x:latest` are the same names the way a backend completes them.
fn same_image_name(a: &str, b: &str) -> bool {
    fn full(name: &str) -> String {
        let mut name = name;
        for prefix in ["docker.io/library/", "docker.io/", "localhost/", "library/"] {
            name = name.strip_prefix(prefix).unwrap_or(name);
        }
        let last = name.rsplit('/').next().unwrap_or(name);
        if last.contains(':') || name.contains('@') {
            name.to_string()
        } else {
            format!("{name}:latest")
        }
    }
    a == b || full(a) == full(b)
}

/// Parses the package file: one `name<TAB>version` line per installed package.
pub(crate) fn parse_packages(text: &str) -> Vec<(String, String)> {
    let mut packages: BTreeMap<String, String> = BTreeMap::new();
    for line in text.lines() {
        if let Some((name, version)) = line.split_once('\t') {
            if !name.is_empty() {
                packages.insert(name.to_string(), version.to_string());
            }
        }
    }
    packages.into_iter().collect()
}

/// Writes the package file, sorted by name.
pub(crate) fn format_packages(packages: &[(String, String)]) -> String {
    let sorted: BTreeMap<&str, &str> = packages.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
    sorted.into_iter().map(|(name, version)| format!("{name}\t{version}\n")).collect()
}

/// Whether a package name or version can be kept in the package file.
pub(crate) fn valid_package_field(text: &str) -> bool {
    !text.is_empty() && !text.contains(['\t', '\n', '\r'])
}

/// The container port a member's spec or the image exposes, as Docker writes it (`8080/tcp`).
pub(crate) fn port_key(port: u16) -> String {
    format!("{port}/tcp")
}

/// Reads `8080/tcp` (or `8080`) as a TCP port; other protocols are not ours.
pub(crate) fn parse_port_key(key: &str) -> Option<u16> {
    match key.split_once('/') {
        Some((port, "tcp")) => port.parse().ok(),
        Some(_) => None,
        None => key.parse().ok(),
    }
}

/// Extracts the single regular file of a tar archive (what `GET /containers/…/archive` of a
/// file returns): its content, or `None` if the archive holds no regular file.
pub(crate) fn untar_single_file(archive: &[u8]) -> Option<Vec<u8>> {
    let mut offset = 0;
    while offset + 512 <= archive.len() {
        let header = &archive[offset..offset + 512];
        if header.iter().all(|&b| b == 0) {
            return None;
        }
        let size_field = &header[124..136];
        let size_text: String =
            size_field.iter().take_while(|&&b| b != 0).map(|&b| b as char).collect::<String>().trim().to_string();
        let size = usize::from_str_radix(&size_text, 8).ok()?;
        let kind = header[156];
        let start = offset + 512;
        let end = start.checked_add(size)?;
        if (kind == b'0' || kind == 0) && end <= archive.len() {
            return Some(archive[start..end].to_vec());
        }
        offset = start + size.div_ceil(512) * 512;
    }
    None
}

impl DockerConfig {
    pub(crate) fn labels(&self) -> Labels {
        Labels::new(&self.label_prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> InstanceId {
        InstanceId::parse("i-abc").expect("id")
    }

    fn group() -> ScalingGroupId {
        ScalingGroupId::parse("asg-g").expect("group")
    }

    fn container(name: &str, image: &str, port: Option<u16>) -> ContainerSpec {
        ContainerSpec { name: name.into(), image: image.into(), port, ..ContainerSpec::default() }
    }

    #[test]
    fn names_and_tags_are_sanitized() {
        let labels = Labels::new("rollscale");
        assert_eq!(labels.primary_name(&id()), "rollscale-i-abc");
        assert_eq!(labels.member_name(&id(), "log agent/1"), "rollscale-i-abc--log_agent_1");
        assert_eq!(sanitize_tag("My Image:1"), "My-Image-1");
        assert_eq!(sanitize_tag(".hidden"), "_.hidden");
        assert_eq!(sanitize_tag(""), "image");
        assert_eq!(sanitize_tag(&"x".repeat(300)).len(), 128);
    }

    #[test]
    fn ecs_layout_takes_command_env_and_port_of_the_first_container() {
        let labels = Labels::new("rollscale");
        let mut first = container("web", "ignored", Some(8080));
        first.command = vec!["httpd".into()];
        first.env = vec![("A".into(), "1".into())];
        let spec = InstanceSpec {
            id: id(),
            group_id: group(),
            group_type: GroupType::ECS,
            image_id: "localhost/demo:v1".into(),
            containers: vec![first.clone()],
        };
        let layout = Layout::of_spec(&labels, &spec).expect("layout");
        assert_eq!(layout.members.len(), 1);
        assert_eq!(layout.members[0].image, "localhost/demo:v1");
        assert_eq!(layout.members[0].command, vec!["httpd".to_string()]);
        assert_eq!(layout.ports, vec![8080]);
        let values = layout.labels_of(&labels, &layout.members[0]);
        let recorded = Recorded::read(&labels, &values);
        assert_eq!(recorded.image_id, "localhost/demo:v1");
        assert_eq!(recorded.spec, Some(first.clone()));
        assert_eq!(recorded.specs, vec![first]);
        assert_eq!(recorded.ports, vec![8080]);
        assert_eq!(recorded.group_type, Some(GroupType::ECS));
    }

    #[test]
    fn the_made_from_label_records_the_image_id_found() {
        let labels = Labels::new("rollscale");
        let spec = InstanceSpec {
            id: id(),
            group_id: group(),
            group_type: GroupType::ECS,
            image_id: "localhost/demo:v1".into(),
            containers: Vec::new(),
        };
        let mut layout = Layout::of_spec(&labels, &spec).expect("layout");
        assert_eq!(Recorded::read(&labels, &layout.labels_of(&labels, &layout.members[0])).made_from, "");
        layout.image_ids.insert("localhost/demo:v1".into(), "sha256:31da".into());
        let values = layout.labels_of(&labels, &layout.members[0]);
        assert_eq!(Recorded::read(&labels, &values).made_from, "sha256:31da");
    }

    #[test]
    fn the_running_image_is_the_recorded_one_unless_the_container_shows_another() {
        const V1: &str = "localhost/rollscale-demo:v1";
        const ID1: &str = "sha256:31da69d81b1a636fb712e5003ffb302c2f64bf5862bf966190c822ec438012f4";
        const ID2: &str = "sha256:ad8394d483e353ebb0c526dec8044a920eff3963346a4c2a0ba83fc15c2b0ac8";
        // As made.
        assert_eq!(running_image(V1, ID1, V1, ID1), V1);
        assert_eq!(running_image("rollscale-demo:v1", ID1, V1, ID1), "rollscale-demo:v1");
        // Docker names the image by its ID once the tag moved on: still the one it was made from.
        assert_eq!(running_image(V1, ID1, "31da69d81b1a", ID1), V1);
        // Made again out of band from another image.
        assert_eq!(running_image(V1, ID1, "localhost/rollscale-demo:broken", ID2), "localhost/rollscale-demo:broken");
        // ... from the same name, which meanwhile names another image: the ID it runs.
        assert_eq!(running_image(V1, ID1, V1, ID2), ID2);
        // The image ID copied along with the labels is not taken for the image it runs.
        assert_eq!(running_image(V1, ID1, "localhost/other:v9", ID2), "localhost/other:v9");
        // Without a recorded ID (a container made before it was recorded): by name.
        assert_eq!(running_image(V1, "", V1, ID2), V1);
        assert_eq!(running_image("busybox", "", "docker.io/library/busybox:latest", ID2), "busybox");
        assert_eq!(running_image(V1, "", "localhost/rollscale-demo:v2", ID2), "localhost/rollscale-demo:v2");
        assert_eq!(running_image("31da69d81b1a", "", V1, ID1), "31da69d81b1a");
        assert_eq!(running_image(V1, "", "", ""), V1);
        // Not recorded at all: what the container says.
        assert_eq!(running_image("", "", V1, ID1), V1);
        assert_eq!(running_image("", "", "", ID1), ID1);
    }

    #[test]
    fn eci_layout_names_members_and_refuses_duplicates() {
        let labels = Labels::new("rollscale");
        let specs = vec![container("web", "a:1", Some(80)), container("side", "b:1", Some(81))];
        let layout = Layout::group(&labels, id(), group(), "eci", specs).expect("layout");
        assert_eq!(layout.members[0].name, "rollscale-i-abc");
        assert_eq!(layout.members[1].name, "rollscale-i-abc--side");
        assert_eq!(layout.ports, vec![80, 81]);
        let same = vec![container("web", "a:1", None), container("a b", "b:1", None), container("a_b", "c:1", None)];
        assert!(Layout::group(&labels, id(), group(), "eci", same).is_err());
        assert!(Layout::group(&labels, id(), group(), "eci", vec![]).is_err());
        assert!(Layout::group(&labels, id(), group(), "eci", vec![container("x", "", None)]).is_err());
    }

    #[test]
    fn package_file_round_trips_sorted() {
        let packages = vec![("zlib".to_string(), "1".to_string()), ("nginx".to_string(), "1.2".to_string())];
        let text = format_packages(&packages);
        assert_eq!(text, "nginx\t1.2\nzlib\t1\n");
        assert_eq!(parse_packages(&text), vec![("nginx".into(), "1.2".into()), ("zlib".into(), "1".into())]);
        assert_eq!(parse_packages("garbage\n\n"), vec![]);
        assert!(!valid_package_field("a\tb"));
        assert!(valid_package_field("nginx"));
    }

    #[test]
    fn ports_parse() {
        assert_eq!(parse_port_key("8080/tcp"), Some(8080));
        assert_eq!(parse_port_key("53/udp"), None);
        assert_eq!(parse_ports("80, 81,x"), vec![80, 81]);
    }

    #[test]
    fn untar_reads_the_first_regular_file() {
        let mut header = [0u8; 512];
        header[..8].copy_from_slice(b"packages");
        header[124..135].copy_from_slice(b"00000000004");
        header[156] = b'0';
        let mut archive = header.to_vec();
        let mut body = b"a\t1\n".to_vec();
        body.resize(512, 0);
        archive.extend(body);
        archive.extend([0u8; 1024]);
        assert_eq!(untar_single_file(&archive), Some(b"a\t1\n".to_vec()));
        assert_eq!(untar_single_file(&[0u8; 1024]), None);
    }
}
