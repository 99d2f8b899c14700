-- Images removed from the catalog by DeleteImage. An image the catalog does not know may be put
-- into it from the fleet's own images (one built on the container host after start); a marked
-- one is not, until a CreateImage adds it again explicitly, which removes the mark.
CREATE TABLE image_tombstones (
    id TEXT PRIMARY KEY,
    deleted_at BIGINT NOT NULL
);
